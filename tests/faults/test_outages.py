"""What a deployment lives through besides a dying worker: Redis (the broker and the cache) stopped
for 30 s, PostgreSQL restarted, AWS unreachable for 30 s, the portal clock jumping an hour ahead.
Each strikes at a point the gate makes certain; each deployment ends as the engine's rules say, and
consistently (tests/faults/conftest.py, `World.consistent`)."""

import time
from datetime import timedelta

import pytest

from deployments.engine import LEASE
from deployments.tasks import deployments_reconcile
from portal import clock
from portal.models import AuditEvent, Notification
from tests.conftest import wait_for
from tests.faults import outages, table
from tests.faults.outside import after, health_read, told

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = 30


def test_redis_stopped_for_30_s_as_a_release_rolls_back_loses_no_alert_and_sends_none_twice(world):
    world.users.latency_ms["green"] = 5000.0  # the release answers slowly: its first verdict fails
    world.gate.arm(told(world.alb["green"], 0))
    world.worker()
    deployment = world.deploy()
    world.gate.wait()
    try:
        outages.redis_stopped()
        stopped = time.monotonic()
        world.gate.open()  # the rollback goes on without its broker and its cache
        # The rollback ends and its alert is written; the alert's task cannot be queued.
        alert = wait_for(
            lambda: Notification.objects.filter(
                subject=f"{world.change.number} rolled back in Production"
            ).first(),
            timeout=OUTAGE_SECONDS,
        )
        assert world.row(deployment).ended_at is not None and alert.status == Notification.Status.PENDING
        time.sleep(max(OUTAGE_SECONDS - (time.monotonic() - stopped), 0))
    finally:
        outages.redis_started()

    world.until_ended(deployment)

    world.ended_as(table.case(table.REDIS, "rollback"), deployment)


def test_postgresql_restarted_while_the_load_balancer_is_told_100_percent_completes(world):
    world.gate.arm(told(world.alb["green"], 100))
    first = world.worker()
    deployment = world.deploy()
    world.gate.wait()
    try:
        outages.postgres_stopped()
        world.gate.open()  # the load balancer has 100 %; the worker cannot write it down
        wait_for(lambda: "OperationalError" in first.log_path.read_text(), timeout=30)
    finally:
        outages.postgres_started()
    row = world.row(deployment)
    assert (row.state, row.desired_weight, row.applied_weight) == ("shifting", 100, 50)

    clock.shift(LEASE + timedelta(seconds=1))  # the lease of the step that failed runs out
    world.until_ended(deployment)

    world.ended_as(table.case(table.POSTGRES, "100 %"), deployment)


def test_aws_unreachable_for_30_s_during_a_verdict_completes_once_it_is_back(world):
    green = world.alb["green"]
    world.gate.arm(after(told(green, 50), health_read(green)))
    world.worker()
    deployment = world.deploy()
    world.gate.wait()
    try:
        world.aws.down()
        down = time.monotonic()
        world.gate.open()
        wait_for(lambda: "AWS could not be reached" in world.row(deployment).error, timeout=20)
        time.sleep(max(OUTAGE_SECONDS - (time.monotonic() - down), 0))
        row = world.row(deployment)
        assert (row.state, row.applied_weight, row.ended_at) == ("shifting", 50, None)
        assert row.attempts >= 2  # waited, tried again, waited longer
    finally:
        world.aws.up()

    clock.shift(timedelta(minutes=1))  # the backoff's last wait is over
    world.until_ended(deployment)

    world.ended_as(table.case(table.AWS, "50 %"), deployment)


def test_the_clock_jumping_an_hour_while_a_worker_tells_the_load_balancer_50_percent_completes(world):
    """The jump makes the lease of a worker inside an AWS call look long lapsed: the reconciler on
    another worker takes the deployment over, and the first one's call lands late (after the other
    has moved the load balancer on), as a slow request may."""
    green = world.alb["green"]
    world.settings(monitor_seconds=3600)
    world.gate.arm(told(green, 50))
    world.worker()
    world.worker()
    deployment = world.deploy()
    world.gate.wait()

    jumped = clock.shift(timedelta(hours=1))
    wait_for(lambda: world.users.last >= jumped)  # the users' requests go on, at the new time
    deployments_reconcile.delay()  # beat, on its next tick
    wait_for(lambda: world.row(deployment).applied_weight == 100, timeout=30, interval=0.02)
    world.gate.open()  # the first worker's 50 % reaches the load balancer now
    wait_for(lambda: world.row(deployment).state == "monitoring", timeout=30)

    clock.shift(timedelta(hours=1))  # the monitoring's hour
    world.until_ended(deployment)

    world.ended_as(table.case(table.CLOCK, "50 %"), deployment)
    # What the load balancer was found to have, each time it was read back: the late 50 % was
    # found before the 100 % step's verdict, and 100 % put back.
    confirmed = AuditEvent.objects.filter(action="deployment.weights_confirmed", object_id=str(deployment.pk))
    assert [event.after["applied_weight"] for event in confirmed.order_by("id")] == [25, 50, 100, 50, 100]
