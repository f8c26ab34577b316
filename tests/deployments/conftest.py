"""A production to deploy to: an application load balancer in moto (in-process; built as the
simulated production builds its own) with blue and green target groups of two EC2 instances each,
each colour answering smoke tests from a real local HTTP server, a repository to release in, and a
change ready to deploy. Its steps are judged by the product's own telemetry, CloudWatch: target
health from moto's ELBv2, request and 5xx counts and alarms from moto's CloudWatch, and the latency
percentiles, which moto does not compute, answered through botocore's Stubber."""

import copy
import math
from collections import defaultdict
from datetime import datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

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


class CloudWatchPercentiles:
    """CloudWatch's latency percentiles, which moto does not compute (it has no extended
    statistics): the response times `publish` says the load balancer measured are kept here by
    their metric's dimensions, and each call the product makes for TargetResponseTime p95 and p99
    is answered through botocore's Stubber, on a CloudWatch client of its own (the product's other
    CloudWatch calls go to moto), with what CloudWatch computes of them: each period's
    nearest-rank percentile, in seconds. The request is checked against the query CloudWatch
    expects; one that is not, or no call at all, fails the test at its end (`problems`)."""

    def __init__(self):
        self.samples = defaultdict(list)  # (LoadBalancer, TargetGroup) -> [(when, ms, how many)]
        self.client = boto3.client("cloudwatch", region_name=REGION)
        self.answered: list[dict] = []  # what each call was answered: its target group and values
        self.problems: list[str] = []

    def record(self, listener_arn: str, target_group_arn: str, at: datetime, ms: float, count: int) -> None:
        from integrations.aws import dimension

        if count:
            key = (dimension(listener_arn, "LoadBalancer"), dimension(target_group_arn, "TargetGroup"))
            self.samples[key].append((at, ms, count))

    def install(self, monkeypatch) -> None:
        """Routes `Aws.percentiles` (the product's, unchanged) to the stubbed client."""
        from integrations.aws import Aws

        real, fake = Aws.percentiles, self

        def percentiles(aws, *, listener_arn, target_group_arn, start, end, period=60):
            routed = copy.copy(aws)
            routed.client = lambda service: fake.client if service == "cloudwatch" else aws.client(service)
            with Stubber(fake.client) as stub:
                stub.add_response(
                    "get_metric_data",
                    fake.answer(listener_arn, target_group_arn, start, end, period),
                    fake.expected(listener_arn, target_group_arn, start, end, period),
                )
                try:
                    return real(
                        routed,
                        listener_arn=listener_arn,
                        target_group_arn=target_group_arn,
                        start=start,
                        end=end,
                        period=period,
                    )
                finally:
                    try:
                        stub.assert_no_pending_responses()
                    except AssertionError:
                        fake.problems.append(
                            f"The percentiles of {target_group_arn} were not asked of CloudWatch as "
                            "expected (another query, or none)."
                        )

        monkeypatch.setattr(Aws, "percentiles", percentiles)

    @staticmethod
    def _dimensions(listener_arn: str, target_group_arn: str) -> list[dict]:
        from integrations.aws import dimension

        return [
            {"Name": "LoadBalancer", "Value": dimension(listener_arn, "LoadBalancer")},
            {"Name": "TargetGroup", "Value": dimension(target_group_arn, "TargetGroup")},
        ]

    def expected(self, listener_arn, target_group_arn, start, end, period) -> dict:
        """GetMetricData's parameters for p95 and p99 of the target group's TargetResponseTime."""
        metric = {
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "TargetResponseTime",
            "Dimensions": self._dimensions(listener_arn, target_group_arn),
        }
        return {
            "MetricDataQueries": [
                {
                    "Id": f"targetresponsetime_{stat}",
                    "MetricStat": {"Metric": metric, "Period": period, "Stat": stat},
                    "ReturnData": True,
                }
                for stat in ("p95", "p99")
            ],
            "StartTime": start,
            "EndTime": end,
        }

    def answer(self, listener_arn, target_group_arn, start, end, period) -> dict:
        """CloudWatch's answer: per period with response times (periods from `start`, the window
        to `end` exclusive, whole seconds, as moto counts the requests), its p95 and p99."""
        dimensions = self._dimensions(listener_arn, target_group_arn)
        samples = self.samples[(dimensions[0]["Value"], dimensions[1]["Value"])]
        low, high = start.replace(microsecond=0), end.replace(microsecond=0)
        periods = defaultdict(list)
        for at, ms, count in samples:
            if low <= at < high:
                periods[low + timedelta(seconds=period * ((at - low) // timedelta(seconds=period)))].append(
                    (ms, count)
                )
        results = [
            {
                "Id": f"targetresponsetime_{stat}",
                "Label": stat,
                "StatusCode": "Complete",
                "Timestamps": sorted(periods),
                "Values": [_nearest_rank(periods[at], p) / 1000 for at in sorted(periods)],
            }
            for stat, p in (("p95", 0.95), ("p99", 0.99))
        ]
        self.answered.append({"target_group": target_group_arn, **{r["Id"]: r["Values"] for r in results}})
        return {"MetricDataResults": results}


def _nearest_rank(samples: list[tuple[float, int]], p: float) -> float:
    """The p-th percentile (nearest rank) of response times given as (ms, how many)."""
    rank, seen = math.ceil(p * sum(count for _ms, count in samples)), 0
    for ms, count in sorted(samples):
        seen += count
        if seen >= rank:
            return ms
    raise ValueError("no samples")


@pytest.fixture
def cloudwatch_percentiles(aws, monkeypatch):
    """The latency percentiles CloudWatch answers in this test (see CloudWatchPercentiles)."""
    fake = CloudWatchPercentiles()
    fake.install(monkeypatch)
    yield fake
    assert not fake.problems, fake.problems


@pytest.fixture
def alb(aws, settings, cloudwatch_percentiles):
    """The load balancer in moto in this process (with the latency percentiles CloudWatch answers
    of it, under "percentiles")."""
    settings.AWS_REGION, settings.AWS_ENDPOINT_URL = REGION, None
    return {**simulator.build(), "percentiles": cloudwatch_percentiles}


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


def aws_client(alb, service: str):
    """A boto3 client of the load balancer's moto (in this process, or its server)."""
    return boto3.client(service, region_name=REGION, endpoint_url=alb["endpoint"], **alb["credentials"])


def listener_weights(alb) -> dict[str, int]:
    """Each colour's weight on the listener, as AWS has it."""
    action = aws_client(alb, "elbv2").describe_listeners(ListenerArns=[alb["listener"]])["Listeners"][0][
        "DefaultActions"
    ][0]
    groups = action.get("ForwardConfig", {}).get("TargetGroups") or [
        {"TargetGroupArn": action["TargetGroupArn"], "Weight": 100}
    ]
    by_arn = {alb["blue"]: "blue", alb["green"]: "green"}
    return {by_arn[g["TargetGroupArn"]]: g["Weight"] for g in groups}


def publish(
    alb, colour: str, *, requests: int, errors: int = 0, at=None, latency_ms: float | None = 120.0
) -> None:
    """The load balancer's per-minute counts for a colour, as CloudWatch would have them (in moto)
    and, with `latency_ms`, that many requests' response times, of which CloudWatch's percentiles
    are answered (`alb["percentiles"]`: moto computes none)."""
    from integrations.aws import dimension

    dimensions = [
        {"Name": "LoadBalancer", "Value": dimension(alb["listener"], "LoadBalancer")},
        {"Name": "TargetGroup", "Value": dimension(alb[colour], "TargetGroup")},
    ]
    at = at or clock.now()
    aws_client(alb, "cloudwatch").put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Timestamp": at, "Value": value, "Unit": "Count"}
            for name, value in (("RequestCount", requests), ("HTTPCode_Target_5XX_Count", errors))
        ],
    )
    if latency_ms is not None:
        alb["percentiles"].record(alb["listener"], alb[colour], at, latency_ms, requests)


def alarm(alb, name: str, state: str) -> None:
    """A CloudWatch metric alarm on the load balancer's 5xx (put in moto once), in `state` now."""
    cloudwatch = aws_client(alb, "cloudwatch")
    if not cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/ApplicationELB",
            MetricName="HTTPCode_Target_5XX_Count",
            Dimensions=[{"Name": "LoadBalancer", "Value": alb["load_balancer"].split(":loadbalancer/")[1]}],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=10,
            ComparisonOperator="GreaterThanThreshold",
        )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="Set by the test")


@pytest.fixture
def judged_by():
    """The telemetry production's steps are judged by: the product's own, CloudWatch. Tests whose
    engine runs in worker processes, which no Stubber of the test's reaches, are judged by the
    demo's simulated telemetry instead (they override this fixture)."""
    return DeploySettings.Telemetry.CLOUDWATCH


@pytest.fixture
def production(alb, colours, repo, settings, judged_by):  # noqa: F811
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
        telemetry=judged_by,
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
