"""AWS going wrong under a deployment: a listener or target group that is not there, throttling, a
worker stopped between wanting a weight and seeing it applied. Each is said in words and ends in a
safe state (the old colour live), never half-shifted; the weights on the listener and in the row
agree at rest. And the production percentile path, which moto cannot answer, through botocore's
Stubber with CloudWatch's real response shape."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from botocore.stub import Stubber

from deployments import engine, services
from deployments.models import Deployment, DeploySettings
from integrations.aws import Aws, AwsError, dimension
from tests.deployments.conftest import REGION, listener_weights, publish
from tests.deployments.test_engine import run

pytestmark = pytest.mark.django_db


def test_a_listener_that_is_not_there_stops_it_at_the_pre_flight(alb, ready, rita):
    missing = alb["listener"].rsplit("/", 1)[0] + "/0123456789abcdef"
    DeploySettings.objects.update(listener_arn=missing)
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.FAILED, deployment.error
    assert "AWS refused to read the listener's weights (ListenerNotFound)" in deployment.error
    assert deployment.stages.get().name == "Pre-flight"  # before the release: nothing merged
    assert deployment.desired_weight == deployment.applied_weight == 0
    assert listener_weights(alb) == {"blue": 100}


def test_a_target_group_that_is_not_there_stops_it_before_any_traffic(alb, ready, rita):
    DeploySettings.objects.update(green_target_group_arn=alb["green"][:-4] + "dead")
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert "AWS refused to read the target group's health (TargetGroupNotFound)" in deployment.error
    assert listener_weights(alb) == {"blue": 100}


def test_throttling_is_waited_out_with_backoff(alb, ready, rita):
    deployment = services.deploy(actor=rita, change=ready)
    world = engine.outside_for(deployment.environment.deploy_settings)
    throttled = []

    def throttle(**kwargs):
        if len(throttled) < 2:
            throttled.append(kwargs["model"].name)
            return (
                SimpleNamespace(status_code=400, headers={}, content=b""),
                {
                    "Error": {"Code": "Throttling", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
            )
        return None

    world.aws.client("elbv2").meta.events.register(
        "before-call.elastic-load-balancing-v2.ModifyListener", throttle
    )
    waits = [engine.advance(deployment.pk, outside=world) for _ in range(2)]
    deployment.refresh_from_db()
    assert waits == [2, 4] and deployment.attempts == 2
    assert "AWS is busy (Throttling) while trying to set the listener's weights" in deployment.error
    assert listener_weights(alb) == {"blue": 100}  # nothing half-done meanwhile
    engine.advance(deployment.pk, outside=world)
    deployment.refresh_from_db()
    assert throttled == ["ModifyListener", "ModifyListener"] and deployment.attempts == 0
    assert deployment.applied_weight == 25 and listener_weights(alb) == {"green": 25, "blue": 75}


@pytest.mark.parametrize("told_aws", [False, True], ids=["before-aws-was-told", "after-aws-was-told"])
def test_a_weight_wanted_but_not_confirmed_is_made_to_agree(alb, ready, rita, told_aws):
    deployment = run(
        services.deploy(actor=rita, change=ready), until=lambda d: d.applied_weight == 25, alb=alb
    )
    # The worker stopped after writing 50 % as wanted, before (or just after) telling the listener.
    Deployment.objects.filter(pk=deployment.pk).update(desired_weight=50, lease_until=None)
    if told_aws:
        deploy = deployment.environment.deploy_settings
        engine.outside_for(deploy).aws.set_weights(
            {alb["green"]: 50, alb["blue"]: 50}, listener_arn=deploy.listener_arn
        )
    engine.advance(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.desired_weight == deployment.applied_weight
    assert listener_weights(alb) == {
        "green": deployment.applied_weight,
        "blue": 100 - deployment.applied_weight,
    }


def test_the_percentiles_come_from_cloudwatch_per_target_group_and_load_balancer(settings):
    aws = Aws(region=REGION)
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
    listener = f"{arn}:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2"
    group = f"{arn}:targetgroup/shop-green/73e2d6bc24d8a067"
    start, end = datetime(2026, 11, 26, 9, 0, tzinfo=UTC), datetime(2026, 11, 26, 9, 5, tzinfo=UTC)
    dimensions = [
        {"Name": "LoadBalancer", "Value": "app/shop/50dc6c495c0c9188"},
        {"Name": "TargetGroup", "Value": "targetgroup/shop-green/73e2d6bc24d8a067"},
    ]
    metric = {"Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime", "Dimensions": dimensions}
    expected = {
        "MetricDataQueries": [
            {
                "Id": f"targetresponsetime_{stat}",
                "ReturnData": True,
                "MetricStat": {"Period": 60, "Stat": stat, "Metric": metric},
            }
            for stat in ("p95", "p99")
        ],
        "StartTime": start,
        "EndTime": end,
    }
    with Stubber(aws.client("cloudwatch")) as stub:
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {
                        "Id": "targetresponsetime_p95",
                        "Label": "p95",
                        "StatusCode": "Complete",
                        "Timestamps": [start + timedelta(minutes=i) for i in range(3)],
                        "Values": [0.21, 0.34, 0.28],
                    },
                    {
                        "Id": "targetresponsetime_p99",
                        "Label": "p99",
                        "StatusCode": "Complete",
                        "Timestamps": [start + timedelta(minutes=i) for i in range(3)],
                        "Values": [0.61, 0.94, 0.7],
                    },
                ]
            },
            expected,
        )
        latency = aws.percentiles(listener_arn=listener, target_group_arn=group, start=start, end=end)
        stub.assert_no_pending_responses()
    assert latency == {"p95": pytest.approx(340.0), "p99": pytest.approx(940.0)}  # the worst minute, in ms


def test_an_arn_that_is_not_an_alb_is_refused_in_words():
    assert (
        dimension("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/abc", "TargetGroup")
        == "targetgroup/web/abc"
    )
    with pytest.raises(AwsError, match="is not an ARN of an application load balancer's loadbalancer"):
        dimension("arn:aws:elasticloadbalancing:us-east-1:1:listener/net/nlb/1/2", "LoadBalancer")


def test_a_deployment_that_makes_no_progress_is_said_to_be_stuck_once_an_hour(alb, ready, rita):
    from deployments.tasks import deployments_reconcile
    from portal import clock
    from portal.models import Notification

    deployment = run(
        services.deploy(actor=rita, change=ready), until=lambda d: d.applied_weight == 25, alb=alb
    )
    # A worker hangs holding it: nobody else may take it, and it is overdue.
    Deployment.objects.filter(pk=deployment.pk).update(
        lease_until=clock.now() + timedelta(days=1), lease_owner="hung"
    )
    clock.shift(timedelta(minutes=12))
    deployments_reconcile()

    def alerts():
        return Notification.objects.filter(subject__contains="is stuck").order_by("pk")

    told = list(alerts())
    assert [(n.channel, n.recipient) for n in told] == [
        ("slack", "#production-alerts"),
        ("email", ready.requester.email),
    ]
    assert "has made no progress for 12 minutes" in told[0].body and "25 % on green" in told[0].body
    deployments_reconcile()
    assert alerts().count() == 2  # not again within the hour
    clock.shift(timedelta(hours=1, minutes=1))
    deployments_reconcile()
    assert alerts().count() == 4


def _throttle_modify_listener(world, calls: list, *, times: int):
    def throttle(**kwargs):
        if len(calls) < times:
            calls.append(kwargs["model"].name)
            error = {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}
            return (SimpleNamespace(status_code=400, headers={}, content=b""), error)
        return None

    world.aws.client("elbv2").meta.events.register(
        "before-call.elastic-load-balancing-v2.ModifyListener", throttle
    )


def test_a_rollback_never_gives_up_on_passing_errors_and_keeps_the_environment_locked(alb, ready, rita):
    from portal import clock

    deployment = run(
        services.deploy(actor=rita, change=ready), until=lambda d: d.applied_weight == 25, alb=alb
    )
    services.deployment_rollback(actor=rita, deployment=deployment, reason="Errors on green")
    world, calls = engine.outside_for(deployment.environment.deploy_settings), []
    _throttle_modify_listener(world, calls, times=12)  # more than a step's retries
    for _ in range(12):
        wait = engine.advance(deployment.pk, outside=world)
        clock.shift(timedelta(seconds=wait or 0))
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.ROLLING_BACK and deployment.ended_at is None  # still locked
    assert "AWS is busy (Throttling)" in deployment.error and len(calls) == 12
    engine.advance(deployment.pk, outside=world)
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert deployment.desired_weight == deployment.applied_weight == 0
    assert listener_weights(alb) == {"green": 0, "blue": 100}


def test_the_pre_flight_refuses_an_idle_colour_that_takes_traffic(alb, ready, rita):
    engine.outside_for(ready.environment.deploy_settings).aws.set_weights(
        {alb["blue"]: 90, alb["green"]: 10}, listener_arn=alb["listener"]
    )
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.FAILED
    assert "sends 10 % of the traffic to green, the colour this deployment would replace" in deployment.error
    assert listener_weights(alb) == {"blue": 90, "green": 10}  # left as it was


def test_a_worker_that_lost_its_lease_stops_writing(alb, ready, rita):
    deployment = run(
        services.deploy(actor=rita, change=ready), until=lambda d: d.state == "shifting", alb=alb
    )
    from portal import clock

    clock.shift(timedelta(minutes=6))
    publish(alb, "green", requests=400, at=clock.now() - timedelta(minutes=3))
    world = engine.outside_for(deployment.environment.deploy_settings)

    def taken_over(**kwargs):  # while this worker talks to AWS, another one takes the deployment
        Deployment.objects.filter(pk=deployment.pk).update(lease_owner="other-worker")

    world.aws.client("elbv2").meta.events.register(
        "before-call.elastic-load-balancing-v2.ModifyListener", taken_over
    )
    assert engine.advance(deployment.pk, outside=world, owner="slow-worker") is None
    deployment.refresh_from_db()
    assert deployment.lease_owner == "other-worker"
    assert (
        deployment.applied_weight == 25 and deployment.desired_weight == 50
    )  # what it wanted, not confirmed
