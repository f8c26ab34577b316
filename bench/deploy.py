"""The deployment engine's own speed, against moto: its overhead per stage (from a step's passing
verdict to the next weight set and read back on the listener) and the rollback latency (from a
failing verdict to all traffic back on the old colour), median and worst over BENCH_RUNS runs each.
Targets: overhead under 1 s, rollback under 2 s.

Each run starts a deployment at its smoke tests (the release and the deploy to the idle colour
are the outside world's time, not the engine's) and drives it with the portal clock, as the tests
do: bakes take no real time, so what is measured is the engine's own work, AWS calls included.

    make bench            # all benchmarks
"""

import os
import statistics
import sys
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
    os.environ[name] = value  # moto's, never a real account's

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from moto import mock_aws  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "20"))


def world():
    """An environment deployed blue-green through a moto load balancer, colours answering smoke tests."""
    from demo.simulator import build
    from deployments.models import DeploySettings
    from tests.deployments.conftest import REGION
    from tests.factories import ApprovalPolicyFactory, EnvironmentFactory
    from tests.fakes import FakeColour

    settings.AWS_REGION, settings.AWS_ENDPOINT_URL = REGION, None
    alb = build()
    blue, green = FakeColour(), FakeColour()
    environment = EnvironmentFactory(approval_policy=ApprovalPolicyFactory(name="Bench"))
    DeploySettings.objects.create(
        environment=environment,
        aws_region=REGION,
        listener_arn=alb["listener"],
        blue_target_group_arn=alb["blue"],
        green_target_group_arn=alb["green"],
        blue_url=blue.url,
        green_url=green.url,
        min_requests=0,
        bake_seconds=60,
        analysis_seconds=60,
        verify_seconds=60,
        monitor_seconds=60,
        monitor_interval_seconds=60,
        deployer=DeploySettings.Deployer.SIMULATED,
        telemetry=DeploySettings.Telemetry.SIMULATED,
    )
    return environment, alb


def one_run(environment, requester, *, failing: bool) -> list[float]:
    """Seconds of engine overhead at each step change, or the rollback latency (one figure)."""
    from django.core.cache import cache

    from demo import simulation
    from deployments import engine
    from deployments.models import Deployment
    from portal import clock
    from portal.models import AuditEvent
    from tests.factories import change_create

    deploy = environment.deploy_settings
    deploy.refresh_from_db()
    change = change_create(requester, environment=environment)
    change.status = "deploying"
    change.save(update_fields=["status"])
    now = clock.now()
    live, idle = deploy.live_colour, "green" if deploy.live_colour == "blue" else "blue"
    # The response times the simulated production measures on the new colour during the run.
    cache.delete(simulation.LATENCIES.format(deploy.target_group(idle)))
    latency = 900.0 if failing else 120.0
    simulation.latencies_record(
        deploy.target_group(idle), [(now + timedelta(seconds=s), latency) for s in range(0, 900, 2)]
    )
    deployment = Deployment.objects.create(
        change=change,
        environment=environment,
        created_at=now,
        version="v-bench",
        from_colour=live,
        to_colour=idle,
        plan=[25, 50, 100],
        bake_seconds=60,
        analysis_seconds=60,
        state=Deployment.State.SMOKE,
        state_since=now,
        next_run_at=now,
    )
    while True:
        wait = engine.advance(deployment.pk)
        deployment.refresh_from_db()
        if deployment.ended_at is not None:
            break
        clock.shift(timedelta(seconds=wait or 0))
    events = list(AuditEvent.objects.filter(object_id=str(deployment.pk)).order_by("pk"))
    figures = []
    for stage in deployment.stages.filter(kind="traffic").order_by("pk"):
        if not stage.checks:
            continue
        verdict = max(check["at"] for check in stage.checks)
        moved = next(
            (
                e
                for e in events
                if e.action == "deployment.weights_confirmed" and e.created_at.isoformat() > verdict
            ),
            None,
        )
        if moved is not None and (failing or stage.weight != 100):
            figures.append((moved.created_at - datetime.fromisoformat(verdict)).total_seconds())
    return figures


def summary(name: str, figures: list[float], target: float) -> None:
    median, worst = statistics.median(figures), max(figures)
    verdict = "met" if worst < target else "NOT met"
    print(
        f"  {name:<38} median {median * 1000:7.1f} ms   worst {worst * 1000:7.1f} ms   "
        f"({len(figures)} measures; target under {target:.0f} s: {verdict})"
    )


def main() -> None:
    from portal import clock

    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        with mock_aws():
            from tests.factories import UserFactory

            environment, _ = world()
            requester = UserFactory(username="bench", role="developer")
            overhead, rollback = [], []
            for _ in range(RUNS):
                overhead += one_run(environment, requester, failing=False)
                rollback += one_run(environment, requester, failing=True)
            clock.reset()
        print(f"Deployment engine against moto, {RUNS} passing and {RUNS} failing deployments:")
        summary("overhead per stage (verdict → weight)", overhead, 1)
        summary("rollback (failed verdict → old colour)", rollback, 2)
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
