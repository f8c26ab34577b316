"""The worker carrying a deployment is killed with SIGKILL in each stage of the engine, at a point
the outside world's gate makes certain (tests/faults/outside.py): it dies inside that call, with
its lease held and its next message gone with it. Once the lease has run out, a fresh worker and
the reconciler carry the deployment to the end the engine's rules give: a release killed before or
while traffic moves completes, a rollback completes as a rollback; and the end is consistent."""

from datetime import timedelta

import pytest

from deployments.models import Stage
from portal import clock
from tests.conftest import wait_for
from tests.faults import table
from tests.faults.outside import after, health_read, told

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# A bake, and a monitoring, that last until the test moves the clock on.
LONG = timedelta(minutes=10)


def judged(deployment, weight: int) -> bool:
    """The step at `weight` has had a verdict (its bake runs from before it)."""
    return deployment.stages.filter(kind=Stage.Kind.TRAFFIC, weight=weight).exclude(checks=[]).exists()


def in_pre_flight(world):
    world.gate.arm(lambda call: call.action == "CreateDBSnapshot")
    return world.deploy()


def in_release(world):
    world.gate.arm(lambda call: call.service == "repository")
    return world.deploy()


def in_deploy(world):
    world.gate.arm(lambda call: call.service == "pipeline")
    return world.deploy()


def in_smoke_tests(world):
    world.gate.arm(lambda call: call.service == "colour:green")
    return world.deploy()


def at_25(world):
    world.gate.arm(told(world.alb["green"], 25))
    return world.deploy()


def at_50(world):
    green = world.alb["green"]
    world.gate.arm(after(told(green, 50), health_read(green)))
    return world.deploy()


def at_100(world):
    world.settings(bake_seconds=int(LONG.total_seconds()))
    deployment = world.deploy()
    for weight in (25, 50):
        wait_for(lambda w=weight: judged(deployment, w), timeout=60)
        clock.shift(LONG)  # this step's bake is over
    wait_for(lambda: judged(deployment, 100), timeout=60)
    return deployment


def in_monitoring(world):
    world.settings(monitor_seconds=int(LONG.total_seconds()))
    deployment = world.deploy()
    wait_for(lambda: deployment.stages.filter(kind=Stage.Kind.MONITOR).exists(), timeout=60)
    world.gate.arm(health_read(world.alb["green"]))
    return deployment


def in_rollback(world):
    world.users.latency_ms["green"] = 5000.0  # the release answers slowly: its first verdict fails
    world.gate.arm(told(world.alb["green"], 0))
    return world.deploy()


# How each stage is caught; where the row stands when the worker dies; how much longer than the
# lease the clock then moves on (a bake or a monitoring the test made long).
KILLS = {
    "pre-flight": (in_pre_flight, ("preflight", 0, 0), timedelta(0)),
    "release": (in_release, ("releasing", 0, 0), timedelta(0)),
    "deploy": (in_deploy, ("deploying", 0, 0), timedelta(0)),
    "smoke tests": (in_smoke_tests, ("smoke", 0, 0), timedelta(0)),
    "25 %": (at_25, ("shifting", 25, 0), timedelta(0)),
    "50 %": (at_50, ("shifting", 50, 50), timedelta(0)),
    "100 %": (at_100, ("shifting", 100, 100), LONG),
    "monitoring": (in_monitoring, ("monitoring", 100, 100), LONG),
    "rollback": (in_rollback, ("rolling_back", 0, 25), timedelta(0)),
}


@pytest.mark.parametrize("stage", [c.stage for c in table.CASES if c.fault == table.KILLED])
def test_a_worker_killed_in_any_stage_leaves_the_deployment_ended_as_the_rules_say(world, stage):
    catch, at_kill, later = KILLS[stage]
    first = world.worker()
    deployment = catch(world)
    if stage != "100 %":
        world.gate.wait()
    world.kill(first)
    world.gate.open()  # the held call goes on, answered to a worker that is gone
    row = world.row(deployment)
    assert row.ended_at is None
    assert (row.state, row.desired_weight, row.applied_weight) == at_kill

    world.taken_over(deployment, later=later)

    world.ended_as(table.case(table.KILLED, stage), deployment)
    assert "deployments.advance" in (world.logs / "worker-2.log").read_text()  # the second one took it
    # The pipeline is asked again only by the worker that took over from one killed while asking.
    asked = world.pipeline.asked
    assert len(asked) == (2 if stage == "deploy" else 1) and asked.count(asked[0]) == len(asked)
