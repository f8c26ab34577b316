"""The shapes of the outside world a deployment meets: traffic shifted on a listener rule rather
than the listener's default action, an environment in another account through an assumed role,
and the webhook deployer your pipeline answers (a real local HTTP server)."""

import hashlib
import hmac
import time
from datetime import timedelta

import boto3
import pytest

from deployments import services
from deployments.models import Deployment, DeploySettings
from tests.deployments.conftest import REGION, listener_weights
from tests.deployments.test_engine import run
from tests.fakes import FakePipeline

pytestmark = pytest.mark.django_db

SECRET = "pipeline-secret-0123456789abcdef0123"


@pytest.fixture
def pipeline():
    fake = FakePipeline()
    yield fake
    fake.close()


def test_the_webhook_deployer_is_asked_to_put_the_version_on_the_idle_colour(alb, ready, rita, pipeline):
    DeploySettings.objects.update(
        deployer=DeploySettings.Deployer.WEBHOOK, deployer_url=pipeline.url, deployer_secret=SECRET
    )
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.SUCCEEDED
    asked = {"version": "v1.3.0", "colour": "green", "target_group_arn": alb["green"]}
    assert pipeline.received == [{**asked, "environment": "production", "change": ready.number}]
    # Signed as the README tells a pipeline to check: HMAC-SHA256 of "<t>.<body>" under the secret.
    body, headers = pipeline.requests[0]
    given = dict(part.split("=", 1) for part in headers["X-Greenlight-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), given["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(given["v1"], expected)
    assert abs(time.time() - int(given["t"])) < 300


def test_the_webhook_deployer_without_a_secret_sends_nothing(alb, ready, rita, pipeline):
    DeploySettings.objects.update(deployer=DeploySettings.Deployer.WEBHOOK, deployer_url=pipeline.url)
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert "The webhook deployer has no secret to sign its requests" in deployment.error
    assert pipeline.requests == [] and listener_weights(alb) == {"blue": 100}


def test_a_deployer_that_redirects_is_not_followed_and_its_answer_is_not_kept(alb, ready, rita, pipeline):
    pipeline.status, pipeline.location = 307, "http://169.254.169.254/latest/meta-data/"
    DeploySettings.objects.update(
        deployer=DeploySettings.Deployer.WEBHOOK, deployer_url=pipeline.url, deployer_secret=SECRET
    )
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert (
        f"The deployer at {pipeline.url} answered 307, a redirect, which is not followed" in deployment.error
    )
    assert len(pipeline.requests) == 1 and listener_weights(alb) == {"blue": 100}


def test_a_deployer_that_refuses_stops_it_before_any_traffic(alb, ready, rita, pipeline):
    pipeline.status = 422
    DeploySettings.objects.update(
        deployer=DeploySettings.Deployer.WEBHOOK, deployer_url=pipeline.url, deployer_secret=SECRET
    )
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert (
        f"The deployer at {pipeline.url} refused the deployment (422): its log says why." in deployment.error
    )
    assert listener_weights(alb) == {"blue": 100}


def test_traffic_shifts_on_a_listener_rule_and_the_default_action_is_left_alone(alb, ready, rita):
    elbv2 = boto3.client("elbv2", region_name=REGION)
    rule = elbv2.create_rule(
        ListenerArn=alb["listener"],
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/shop/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": alb["blue"]}],
    )["Rules"][0]["RuleArn"]
    DeploySettings.objects.update(rule_arn=rule)
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.SUCCEEDED
    groups = elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"][0]["ForwardConfig"]["TargetGroups"]
    assert {g["TargetGroupArn"]: g["Weight"] for g in groups} == {alb["green"]: 100, alb["blue"]: 0}
    assert listener_weights(alb) == {"blue": 100}  # the default action is not this deployment's


def test_an_environment_in_another_account_is_reached_through_its_role(alb, ready, rita):
    from demo.simulator import build
    from integrations.aws import Aws, AwsError

    role = "arn:aws:iam::210987654321:role/greenlight-deployer"
    keys = boto3.client("sts", region_name=REGION).assume_role(RoleArn=role, RoleSessionName="setup")[
        "Credentials"
    ]
    credentials = {
        "aws_access_key_id": keys["AccessKeyId"],
        "aws_secret_access_key": keys["SecretAccessKey"],
        "aws_session_token": keys["SessionToken"],
    }
    other = {**build(**credentials), "percentiles": alb["percentiles"]}  # production's own account
    assert other["listener"].split(":")[4] == "210987654321"
    with pytest.raises(AwsError, match="ListenerNotFound"):  # the portal's own account does not see it
        Aws(region=REGION).weights(listener_arn=other["listener"])
    DeploySettings.objects.update(
        role_arn=role,
        listener_arn=other["listener"],
        blue_target_group_arn=other["blue"],
        green_target_group_arn=other["green"],
    )
    deployment = run(services.deploy(actor=rita, change=ready), alb=other)
    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    assert listener_weights(other) == {"green": 100, "blue": 0}


def test_a_worker_keeps_its_clients_and_assumes_a_role_again_only_as_its_credentials_end(alb, monkeypatch):
    from integrations import aws

    role = "arn:aws:iam::210987654321:role/greenlight-deployer"
    first = aws.Aws(region=REGION, role_arn=role).client("elbv2")
    assert aws.Aws(region=REGION, role_arn=role).client("elbv2") is first  # the next task's
    assert aws.Aws(region=REGION).client("elbv2") is not first  # the portal's own account
    assert aws.Aws(region=REGION, role_arn=role).client("cloudwatch") is not first
    # moto's role credentials last an hour: with renewal due two hours before, they are spent.
    monkeypatch.setattr(aws, "ROLE_RENEWED_BEFORE", timedelta(hours=2))
    renewed = aws.Aws(region=REGION, role_arn=role).client("elbv2")
    assert renewed is not first
    assert renewed.meta.region_name == REGION


def test_only_the_forward_action_changes_an_authentication_step_and_stickiness_stay(alb, ready, rita):
    elbv2 = boto3.client("elbv2", region_name=REGION)
    oidc = {
        "Type": "authenticate-oidc",
        "Order": 1,
        "AuthenticateOidcConfig": {
            "Issuer": "https://sso.example.com",
            "AuthorizationEndpoint": "https://sso.example.com/auth",
            "TokenEndpoint": "https://sso.example.com/token",
            "UserInfoEndpoint": "https://sso.example.com/me",
            "ClientId": "shop",
            "ClientSecret": "not-a-secret",
        },
    }
    forward = {
        "Type": "forward",
        "Order": 2,
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": alb["blue"], "Weight": 100}],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300},
        },
    }
    rule = elbv2.create_rule(
        ListenerArn=alb["listener"],
        Priority=5,
        Conditions=[{"Field": "path-pattern", "Values": ["/account/*"]}],
        Actions=[oidc, forward],
    )["Rules"][0]["RuleArn"]
    DeploySettings.objects.update(rule_arn=rule)
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.SUCCEEDED
    actions = sorted(elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"], key=lambda a: a["Order"])
    assert [a["Type"] for a in actions] == ["authenticate-oidc", "forward"]
    assert actions[0]["AuthenticateOidcConfig"]["Issuer"] == "https://sso.example.com"
    config = actions[1]["ForwardConfig"]
    assert config["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 300}
    assert {g["TargetGroupArn"]: g["Weight"] for g in config["TargetGroups"]} == {
        alb["green"]: 100,
        alb["blue"]: 0,
    }


@pytest.mark.parametrize("field", ["deployer", "telemetry"])
def test_a_deployer_or_telemetry_this_installation_lacks_stops_the_deployment_in_words(ready, rita, field):
    """Settings saved where another backend existed (the demo's simulated production, say): the
    deployment fails before any traffic moves, saying what is missing and what there is."""
    deployment = services.deploy(actor=rita, change=ready)
    DeploySettings.objects.filter(environment=ready.environment).update(**{field: "jenkins"})
    deployment = run(deployment)
    assert deployment.state == Deployment.State.FAILED and deployment.applied_weight == 0
    assert f"The {field} 'jenkins' of Production's deploy settings is not available here" in deployment.error
