"""A production to deploy to: an application load balancer in moto (in-process; built as the
simulated production builds its own) with blue and green target groups, each colour answering
smoke tests from a real local HTTP server, CloudWatch counts published per target group, a
repository to release in, and a change ready to deploy."""

from datetime import timedelta

import boto3
import pytest

from demo import simulator
from deployments.models import DeploySettings
from portal import clock
from tests.changes.conftest import repo  # noqa: F401 (a fixture)
from tests.factories import ApprovalPolicyFactory, EnvironmentFactory, UserFactory, approved_change
from tests.fakes import FakeColour

REGION = "us-east-1"
# What a worker process is given to reach the moto server.
AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@pytest.fixture
def colours():
    blue, green = FakeColour(), FakeColour()
    yield {"blue": blue, "green": green}
    blue.close()
    green.close()


@pytest.fixture
def alb(aws, settings):
    """The load balancer in moto in this process."""
    settings.AWS_REGION, settings.AWS_ENDPOINT_URL = REGION, None
    return simulator.build()


@pytest.fixture
def moto_server_alb(settings, monkeypatch):
    """The load balancer in a moto server on a free port, which worker processes reach too."""
    import socket

    import requests
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in AWS_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    settings.AWS_REGION, settings.AWS_ENDPOINT_URL = REGION, f"http://127.0.0.1:{port}"
    # moto keeps its accounts in this process, shared by every server and mock: start empty.
    requests.post(f"{settings.AWS_ENDPOINT_URL}/moto-api/reset", timeout=10).raise_for_status()
    yield simulator.build(endpoint_url=settings.AWS_ENDPOINT_URL)
    server.stop()


def listener_weights(alb) -> dict[str, int]:
    """Each colour's weight on the listener, as AWS has it."""
    action = boto3.client(
        "elbv2", region_name=REGION, endpoint_url=alb["endpoint"], **alb["credentials"]
    ).describe_listeners(ListenerArns=[alb["listener"]])["Listeners"][0]["DefaultActions"][0]
    groups = action.get("ForwardConfig", {}).get("TargetGroups") or [
        {"TargetGroupArn": action["TargetGroupArn"], "Weight": 100}
    ]
    by_arn = {alb["blue"]: "blue", alb["green"]: "green"}
    return {by_arn[g["TargetGroupArn"]]: g["Weight"] for g in groups}


def publish(
    alb, colour: str, *, requests: int, errors: int = 0, at=None, latency_ms: float | None = 120.0
) -> None:
    """The load balancer's per-minute counts for a colour, as CloudWatch would have them (and,
    with `latency_ms`, as many response times measured by the simulated production)."""
    from demo import simulation
    from integrations.aws import dimension

    dimensions = [
        {"Name": "LoadBalancer", "Value": dimension(alb["listener"], "LoadBalancer")},
        {"Name": "TargetGroup", "Value": dimension(alb[colour], "TargetGroup")},
    ]
    at = at or clock.now()
    boto3.client(
        "cloudwatch", region_name=REGION, endpoint_url=alb["endpoint"], **alb["credentials"]
    ).put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Timestamp": at, "Value": value, "Unit": "Count"}
            for name, value in (("RequestCount", requests), ("HTTPCode_Target_5XX_Count", errors))
        ],
    )
    if latency_ms is not None:
        simulation.latencies_record(alb[colour], [(at, latency_ms)] * requests)


@pytest.fixture
def production(alb, colours, repo, settings):  # noqa: F811
    """Production deployed to blue-green through the load balancer above, released in `repo`;
    one approval, no sign-offs, one checklist item (the backup the pre-flight makes)."""
    settings.GITHUB_REPOSITORY, settings.GIT_REPOSITORY_PATH = None, str(repo)
    policy = ApprovalPolicyFactory(
        name="Deploy tests",
        min_approvals=1,
        min_code_owner_approvals=0,
        required_sign_offs=[],
        checks_must_pass=False,
        signed_commits_required=False,
        soak_hours=1,
        checklist=[
            {
                "key": "backup",
                "text": "Database backup completed",
                "phases": ["pre", "before"],
                "integration": "backup",
            }
        ],
    )
    environment = EnvironmentFactory(name="production", approval_policy=policy)
    EnvironmentFactory(
        name="staging", display_name="Staging", branch="staging", is_production=False, approval_policy=policy
    )
    DeploySettings.objects.create(
        environment=environment,
        aws_region=REGION,
        listener_arn=alb["listener"],
        blue_target_group_arn=alb["blue"],
        green_target_group_arn=alb["green"],
        blue_url=colours["blue"].url,
        green_url=colours["green"].url,
        min_requests=100,
        database_instance="shop-db",
        deployer=DeploySettings.Deployer.SIMULATED,
        telemetry=DeploySettings.Telemetry.SIMULATED,
    )
    return environment


@pytest.fixture
def ready(production, developer):
    """A change ready to deploy: approved on the head of staging, that commit soaked in staging,
    in its slot now."""
    from changes import services
    from changes.models import StagingRun

    change = approved_change(developer, production, title="Faster render queue", version_bump="minor")
    staging = production.__class__.objects.get(name="staging")
    for result in ("deployed", "green"):  # what CI reported two hours ago about the approved commit
        StagingRun.objects.create(
            environment=staging,
            commit=change.approved_commit,
            version="v-build-7",
            result=result,
            at=clock.now() - timedelta(hours=2),
        )
    start = clock.now() + timedelta(minutes=1)
    services.change_schedule(actor=developer, change=change, start=start, end=start + timedelta(hours=2))
    clock.shift(timedelta(minutes=2))
    change.refresh_from_db()
    return change


@pytest.fixture
def rita(db):
    """A release manager with an authenticator."""
    return UserFactory(username="rita", first_name="Rita", role="release_manager")
