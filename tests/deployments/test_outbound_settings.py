"""Addresses in the deploy settings: refused when they name where Greenlight may not go (the
cloud's metadata service, link-local, loopback unless listed), when the settings are written and
again when a deployment calls them; the webhook deployer's secret is written, never read back, and
audited as set or changed; smoke tests keep the status and never the body. Refusals are checked
before any connection: literal addresses, and the only traffic is to servers on 127.0.0.1."""

import json
from datetime import timedelta

import pytest

from deployments import services
from deployments.models import Deployment, DeploySettings, Stage
from portal import clock
from portal.models import AuditEvent, BreakGlassSession
from tests.conftest import client_for, verified_login
from tests.deployments.conftest import listener_weights
from tests.deployments.test_engine import run
from tests.factories import otp_code, totp_device
from tests.portal.test_admin_site import admin_form_data

pytestmark = pytest.mark.django_db

PATH = "/api/v1/environments/production/deploy-settings/"
SECRET = "pipeline-secret-0123456789abcdef0123"


def put(user, **change):
    current = client_for(user).get(PATH).json()
    return client_for(user).put(
        PATH, {**current, **change, "otp": otp_code(totp_device(user))}, format="json"
    ), current


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            {"green_url": "http://169.254.169.254/latest/meta-data/iam/"},
            "The green colour's address: 169.254.169.254 may not be reached from Greenlight: "
            "169.254.169.254 is the cloud's metadata service.",
        ),
        ({"blue_url": "http://[fd00:ec2::254]/"}, "fd00:ec2::254 is the cloud's metadata service"),
        ({"blue_url": "http://169.254.1.1:8080/"}, "169.254.1.1 is a link-local address"),
        ({"green_url": "http://10.0.0.7/"}, "10.0.0.7 is a private address"),
        (
            {"deployer": "webhook", "deployer_url": "http://169.254.169.254/", "deployer_secret": SECRET},
            "The webhook deployer's address: 169.254.169.254 may not be reached",
        ),
        ({"green_url": "http://user:pw@127.0.0.1:8102/"}, "carries a user name or password"),
        (
            {"dashboards": {"Metrics": "http://169.254.169.254/latest/meta-data/"}},
            "The dashboard Metrics: 169.254.169.254 may not be reached",
        ),
    ],
)
def test_an_address_greenlight_may_not_reach_is_refused_in_words(production, policy_admin, change, says):
    response, current = put(policy_admin, **change)
    assert response.status_code == 400 and says in response.json()["detail"], response.json()
    assert "OUTBOUND_ALLOWED_HOSTS" in response.json()["detail"] or "user name" in says
    assert client_for(policy_admin).get(PATH).json() == current
    assert not AuditEvent.objects.filter(action="environment.deploy_settings").exists()


def test_loopback_is_reached_only_where_it_is_listed(production, policy_admin, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    response, _ = put(policy_admin, green_url="http://127.0.0.1:8102/")
    assert response.status_code == 400
    assert "127.0.0.1 is a loopback address" in response.json()["detail"]
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/8"]
    response, _ = put(policy_admin, green_url="http://127.0.0.1:8102/")
    assert response.status_code == 200 and response.json()["green_url"] == "http://127.0.0.1:8102/"


def test_the_webhook_deployer_needs_a_secret_that_is_never_shown(production, policy_admin, rita):
    hook = {"deployer": "webhook", "deployer_url": "http://127.0.0.1:9/deploy"}
    refused, current = put(policy_admin, **hook)
    assert refused.status_code == 400
    assert (
        "The webhook deployer signs each request with a secret your pipeline checks"
        in refused.json()["detail"]
    )
    short, _ = put(policy_admin, **hook, deployer_secret="short")
    assert short.status_code == 400 and "32 characters or more" in short.json()["detail"]
    assert client_for(policy_admin).get(PATH).json() == current

    done, _ = put(policy_admin, **hook, deployer_secret=SECRET)
    assert done.status_code == 200, done.json()
    assert "deployer_secret" not in done.json()
    for reader in (policy_admin, rita):
        shown = client_for(reader).get(PATH)
        assert "deployer_secret" not in shown.json() and SECRET not in shown.content.decode()
    assert DeploySettings.objects.get().deployer_secret == SECRET
    # An edit that leaves the secret out keeps it.
    kept, _ = put(policy_admin, bake_seconds=120)
    assert kept.status_code == 200 and DeploySettings.objects.get().deployer_secret == SECRET
    changed, _ = put(policy_admin, deployer_secret=SECRET[::-1])
    assert changed.status_code == 200 and DeploySettings.objects.get().deployer_secret == SECRET[::-1]

    events = AuditEvent.objects.filter(action="environment.deploy_settings").order_by("id")
    said = [(e.before["deployer_secret"], e.after["deployer_secret"]) for e in events]
    assert said == [("", "set"), ("set", "set"), ("set", "changed")]
    assert not any(SECRET in json.dumps([e.before, e.after]) for e in events)
    assert not any(SECRET[::-1] in json.dumps([e.before, e.after]) for e in events)


def test_smoke_tests_keep_the_status_and_never_the_body(alb, ready, rita, colours):
    secret = "AKIA-the-body-says-this"
    colours["green"].body = f"<h1>{secret}</h1>"
    DeploySettings.objects.update(
        smoke_checks=[
            {"path": "/healthz", "status": 200, "contains": "AKIA-the-body"},
            {"path": "/ready", "status": 200, "contains": "not in it"},
        ]
    )
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.FAILED or deployment.state == Deployment.State.ROLLED_BACK
    smoke = deployment.stages.get(kind=Stage.Kind.SMOKE)
    checks = {c["name"]: c for c in smoke.checks}
    assert checks["GET /healthz"]["ok"] and checks["GET /healthz"]["value"] == 200
    assert not checks["GET /ready"]["ok"] and "the expected text missing" in checks["GET /ready"]["detail"]
    stored = json.dumps([smoke.checks, smoke.message, deployment.error])
    assert secret not in stored and "<h1>" not in stored


def test_a_colour_not_allowed_any_more_is_refused_before_a_connection(alb, ready, rita, colours, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []  # the settings were written while loopback was allowed
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    smoke = deployment.stages.get(kind=Stage.Kind.SMOKE)
    assert smoke.state == Stage.State.FAILED
    assert "127.0.0.1 is a loopback address" in smoke.checks[0]["detail"]
    assert colours["green"].hits == 0 and listener_weights(alb) == {"blue": 100}


def test_a_colour_that_redirects_fails_its_smoke_test(alb, ready, rita, colours):
    colours["green"].status = 302
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    smoke = deployment.stages.get(kind=Stage.Kind.SMOKE)
    assert smoke.state == Stage.State.FAILED
    assert (
        "302 in" in smoke.checks[0]["detail"]
        and "a redirect, which is not followed" in smoke.checks[0]["detail"]
    )


def test_the_admin_never_shows_the_secret_and_keeps_it_when_left_empty(client, admin, production):
    DeploySettings.objects.update(
        deployer=DeploySettings.Deployer.WEBHOOK,
        deployer_url="http://127.0.0.1:9/deploy",
        deployer_secret=SECRET,
    )
    now = clock.now()
    BreakGlassSession.objects.create(
        user=admin, reason="Primary database is down", opened_at=now, expires_at=now + timedelta(hours=1)
    )
    verified_login(client, admin)
    url = f"/admin/deployments/deploysettings/{DeploySettings.objects.get().pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and SECRET not in page.content.decode()
    saved = client.post(url, admin_form_data(page, bake_seconds=420))
    assert saved.status_code == 302
    assert DeploySettings.objects.get().deployer_secret == SECRET
    event = AuditEvent.objects.get(action="environment.deploy_settings")
    assert event.after["deployer_secret"] == "set" and SECRET not in json.dumps(event.after)
