"""The blue-green engine against moto: a full pass 0 → 25 → 50 → 100 with the colours swapped; a
failed gate at 25 % and at 50 % rolling back by itself; smoke tests and health that stop it before
any traffic moves; every measured value kept as evidence. Time moves by the portal clock, never by
sleeping: each step returns how long it wants to wait, and the test moves the clock that far."""

from datetime import timedelta

import pytest

from changes.models import Release
from deployments import engine, services
from deployments.models import Deployment, DeploySettings, Stage
from portal import clock
from portal.models import AuditEvent
from tests.deployments.conftest import alarm, aws_client, listener_weights, publish

pytestmark = pytest.mark.django_db


def run(
    deployment: Deployment,
    *,
    until=None,
    alb=None,
    traffic: int = 400,
    errors: int = 0,
    latency_ms: float = 120.0,
    limit: int = 200,
):
    """Advances the deployment, moving the clock as far as each step asks and sending traffic
    to the new colour as it goes (its counts to CloudWatch, its response times to what CloudWatch's
    percentiles are answered of), until it ends (or `until` holds). Returns it."""
    for _ in range(limit):
        deployment.refresh_from_db()
        if deployment.ended_at is not None or (until and until(deployment)):
            return deployment
        wait = engine.advance(deployment.pk)
        if wait is None:
            deployment.refresh_from_db()
            if deployment.paused_at is not None or deployment.ended_at is not None:
                return deployment
            continue
        clock.shift(timedelta(seconds=wait))
        if alb is not None and deployment.state in (Deployment.State.SHIFTING, Deployment.State.MONITORING):
            publish(alb, deployment.to_colour, requests=traffic, errors=errors, latency_ms=latency_ms)
    raise AssertionError(f"deployment {deployment.pk} did not end: {deployment.state}")


def test_a_full_pass_shifts_0_25_50_100_and_swaps_the_colours(alb, ready, rita):
    deployment = services.deploy(actor=rita, change=ready)
    assert (deployment.from_colour, deployment.to_colour, deployment.plan) == ("blue", "green", [25, 50, 100])
    seen = []

    def watch(d):
        if d.state == Deployment.State.SHIFTING and (not seen or seen[-1] != d.applied_weight):
            seen.append(d.applied_weight)
            assert listener_weights(alb) == {"green": d.applied_weight, "blue": 100 - d.applied_weight}
        return False

    deployment = run(deployment, until=watch, alb=alb)
    assert deployment.state == Deployment.State.SUCCEEDED and deployment.error == ""
    assert seen == [25, 50, 100]  # after the smoke tests at 0 % (the stages below)
    assert listener_weights(alb) == {"green": 100, "blue": 0}
    assert deployment.environment.deploy_settings.live_colour == "green"
    ready.refresh_from_db()
    assert ready.status == "completed"  # once its monitoring passed (tests/deployments/test_monitoring.py)
    assert Release.objects.get(change=ready).version == deployment.version == "v1.3.0"
    assert ready.checklist.get(key="backup").done  # the pre-flight snapshot proved it

    stages = list(deployment.stages.values_list("name", "state"))
    assert stages == [
        ("Pre-flight", "passed"),
        ("Release", "passed"),
        ("Deploy v1.3.0 to green", "passed"),
        ("Smoke tests on green (0 %)", "passed"),
        ("25 % on green", "passed"),
        ("50 % on green", "passed"),
        ("100 % on green", "passed"),
        ("Immediate verification of v1.3.0 on green", "passed"),
        ("Monitoring of v1.3.0 on green", "passed"),
    ]
    step = deployment.stages.get(weight=25)
    judged = {c["name"] for c in step.checks}
    assert {
        "Target health",
        "GET /healthz",
        "Requests",
        "5xx error rate",
        "Latency p95",
        "Latency p99",
    } <= judged
    # a 5-minute bake judged each minute; CloudWatch's counts come late, the verdict waits for them
    assert len([c for c in step.checks if c["name"] == "Target health"]) == 5
    requests = [c["value"] for c in step.checks if c["name"] == "Requests"]
    assert requests == sorted(requests) and requests[-1] >= 100
    assert all(c["ok"] is not False for c in step.checks)
    actions = set(AuditEvent.objects.filter(object_id=str(deployment.pk)).values_list("action", flat=True))
    assert {
        "deployment.start",
        "deployment.state",
        "deployment.weights",
        "deployment.weights_confirmed",
    } <= actions


@pytest.mark.parametrize("fail_at", [25, 50])
def test_a_failed_gate_rolls_back_by_itself(alb, ready, rita, fail_at):
    deployment = services.deploy(actor=rita, change=ready)
    deployment = run(deployment, until=lambda d: d.applied_weight == fail_at, alb=alb)
    publish(alb, "green", requests=1000, errors=50)  # 5 % of requests fail
    deployment = run(deployment, alb=alb)

    assert deployment.state == Deployment.State.ROLLED_BACK
    assert listener_weights(alb) == {"green": 0, "blue": 100} and deployment.applied_weight == 0
    assert deployment.environment.deploy_settings.live_colour == "blue"
    assert f"At {fail_at} %: 5xx error rate" in deployment.error and "over 0.001" in deployment.error
    failed = deployment.stages.get(weight=fail_at)
    assert failed.state == Stage.State.FAILED
    rate = [c for c in failed.checks if c["name"] == "5xx error rate"][-1]
    assert rate["ok"] is False and rate["value"] > 0.001 and rate["threshold"] == 0.001
    assert deployment.stages.last().name == "Rollback to blue" and deployment.stages.last().state == "passed"
    ready.refresh_from_db()
    assert ready.status == "rolled_back"


def test_a_slow_new_colour_fails_its_latency_gate(alb, ready, rita, production):
    deployment = services.deploy(actor=rita, change=ready)
    deployment = run(deployment, until=lambda d: d.applied_weight == 25, alb=alb)
    deployment = run(deployment, alb=alb, latency_ms=900.0)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert "Latency p95 900.0 over 500 (ms)" in deployment.error
    failed = deployment.stages.get(weight=25)
    assert [c["value"] for c in failed.checks if c["name"] == "Latency p99"][-1] == 900.0
    # what CloudWatch answered of green, in seconds, its worst minute the one judged
    assert max(v for a in alb["percentiles"].answered for v in a["targetresponsetime_p95"]) == 0.9
    assert {a["target_group"] for a in alb["percentiles"].answered} == {alb["green"]}


def test_failing_smoke_tests_stop_it_before_any_traffic_moves(alb, ready, rita, colours):
    colours["green"].status = 503
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert "Smoke tests failed on green: GET /healthz: 503" in deployment.error
    assert listener_weights(alb) == {"blue": 100}  # never touched
    assert colours["blue"].hits == 0


def test_a_new_colour_that_never_gets_healthy_times_out(alb, ready, rita):
    # Green's instances are stopped: the load balancer reports its targets unused, not healthy.
    elbv2 = aws_client(alb, "elbv2")
    instances = [
        t["Target"]["Id"]
        for t in elbv2.describe_target_health(TargetGroupArn=alb["green"])["TargetHealthDescriptions"]
    ]
    assert len(instances) == 2
    aws_client(alb, "ec2").stop_instances(InstanceIds=instances)
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert "Green did not become healthy in 600 s" in deployment.error
    for instance in instances:
        assert f"{instance} unused (Target is in the stopped state)" in deployment.error
    health = deployment.stages.get(kind=Stage.Kind.DEPLOY).checks
    assert [c["value"] for c in health if c["name"] == "Target health"] == ["0/2"]
    assert listener_weights(alb) == {"blue": 100} and deployment.applied_weight == 0


def test_an_alarm_in_alarm_rolls_it_back(alb, ready, rita):
    DeploySettings.objects.update(alarm_names=["shop-5xx"])
    alarm(alb, "shop-5xx", "OK")
    deployment = services.deploy(actor=rita, change=ready)

    def judged_at_25(d):
        return any(c["name"] == "Alarms" for s in d.stages.filter(weight=25) for c in s.checks)

    deployment = run(deployment, until=judged_at_25, alb=alb)
    alarm(alb, "shop-5xx", "ALARM")
    deployment = run(deployment, alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert "At 25 %: Alarms ['shop-5xx']" in deployment.error
    assert listener_weights(alb) == {"green": 0, "blue": 100}
    alarms = [c for c in deployment.stages.get(weight=25).checks if c["name"] == "Alarms"]
    assert alarms[0]["ok"] is True and alarms[0]["detail"] == "none in ALARM"  # while it was OK
    assert alarms[-1]["ok"] is False and alarms[-1]["value"] == ["shop-5xx"]


def test_too_little_traffic_pauses_rather_than_guessing(alb, ready, rita):
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb, traffic=10)
    assert deployment.paused_at is not None and deployment.state == Deployment.State.SHIFTING
    assert "Only " in deployment.error and "100 are needed" in deployment.error
    assert listener_weights(alb) == {"green": 25, "blue": 75}  # held where it was


def test_a_colour_failing_on_little_traffic_is_rolled_back_not_paused(alb, ready, rita):
    deployment = services.deploy(actor=rita, change=ready)
    deployment = run(deployment, until=lambda d: d.applied_weight == 25, alb=alb)
    publish(alb, "green", requests=40, errors=30)
    deployment = run(deployment, alb=alb, traffic=0)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert "5xx errors 30 over 0.1 (of only 40 requests)" in deployment.error


def test_each_state_move_and_release_step_is_one_info_line_with_its_ids(alb, ready, rita, caplog):
    import logging

    caplog.set_level(logging.INFO)
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    prefix = f"deployment {deployment.pk} of {ready.pk}: "
    engine_lines = [r for r in caplog.records if r.name.startswith("deployments.engine")]
    moves = [r.getMessage() for r in engine_lines if r.levelname == "INFO"]
    # Each line: the ids, the move, and the note the audit event keeps when there is one.
    assert [m.removeprefix(prefix).split(" (")[0] for m in moves if m.startswith(prefix)] == [
        "preflight -> releasing",
        "releasing -> deploying",
        "deploying -> smoke",
        "smoke -> shifting",
        "shifting -> monitoring",
        "monitoring -> succeeded",
    ]
    assert moves[-1] == f"{prefix}monitoring -> succeeded ({_note(deployment)})"
    release_lines = [r for r in caplog.records if r.name.startswith("changes.releases")]
    steps = [r.getMessage() for r in release_lines if r.levelname == "INFO"]
    assert [s.split(":")[0] for s in steps] == [
        f"{ready.number} release.{step}" for step in ("begin", "head", "merged", "tagged", "published")
    ]
    assert all("v1.3.0" in s for s in steps)


def _note(deployment) -> str:
    return (
        AuditEvent.objects.filter(
            object_id=str(deployment.pk), action="deployment.state", after__state="succeeded"
        )
        .get()
        .after["note"]
    )


def test_a_move_the_map_does_not_have_is_refused_and_nothing_is_written(ready, rita):
    from deployments.models import ALLOWED_TRANSITIONS

    assert set(ALLOWED_TRANSITIONS) == set(Deployment.State.values)
    deployment = services.deploy(actor=rita, change=ready)
    Deployment.objects.filter(pk=deployment.pk).update(state=Deployment.State.ROLLED_BACK)
    deployment.refresh_from_db()
    events = AuditEvent.objects.count()
    with pytest.raises(engine.IllegalMove, match="is rolled_back; it cannot become releasing"):
        engine.move(deployment, Deployment.State.RELEASING)
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.ROLLED_BACK and AuditEvent.objects.count() == events
