"""Crash safety with real processes: a Celery worker carrying a deployment is killed with SIGKILL
in the middle of a traffic step; its messages are lost with it. Another worker and the reconciler
take the deployment up from its row and bring it to a consistent end, the load balancer's weights
matching the row's. AWS is a moto server both processes talk to."""

import os
import signal
import time
from datetime import timedelta

import pytest

from demo import simulation
from deployments import services
from deployments.models import Deployment, DeploySettings
from deployments.tasks import deployments_reconcile
from portal import clock
from tests.conftest import start_worker, stop_worker, wait_for
from tests.deployments.conftest import AWS_CREDENTIALS, REGION, listener_weights

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alb(moto_server_alb):
    return moto_server_alb


def test_a_worker_killed_mid_step_is_finished_by_another_and_the_reconciler(
    alb, ready, rita, repo, settings, tmp_path, own_queue
):
    # Short bakes: the workers run in real time. The engine runs in the workers' processes, where
    # no Stubber of this one answers CloudWatch's latency percentiles (moto computes none): this
    # test, about crashes rather than telemetry, is judged by the demo's simulated telemetry, which
    # reads health and counts from the moto server and percentiles from the simulation.
    DeploySettings.objects.update(
        telemetry=DeploySettings.Telemetry.SIMULATED,
        bake_seconds=4,
        analysis_seconds=1,
        min_requests=0,
        database_instance="",
        verify_seconds=2,
        monitor_seconds=2,
        monitor_interval_seconds=1,
    )
    # The response times the simulated production measures on green over the next minutes.
    simulation.latencies_record(
        alb["green"], [(clock.now() + timedelta(seconds=s), 120.0) for s in range(600)]
    )
    env = {
        **own_queue,
        **AWS_CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": settings.AWS_ENDPOINT_URL,
        "GIT_REPOSITORY_PATH": str(repo),
    }
    first = start_worker(tmp_path / "first.log", **env)
    try:
        deployment = services.deploy(actor=rita, change=ready)
        wait_for(
            lambda: Deployment.objects.filter(pk=deployment.pk, state="shifting", applied_weight=25).exists(),
            timeout=60,
            interval=0.02,
        )
        os.kill(first.pid, signal.SIGKILL)  # mid-bake at 25 %, its next message with it
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    deployment.refresh_from_db()
    killed_at = (deployment.state, deployment.applied_weight)
    assert deployment.ended_at is None and killed_at[1] >= 25
    time.sleep(1.5)
    deployment.refresh_from_db()
    assert (deployment.state, deployment.applied_weight) == killed_at  # nobody carries it on

    clock.shift(timedelta(seconds=31))  # any lease the dead worker held runs out
    second = start_worker(tmp_path / "second.log", **env)
    try:

        def ended():
            deployments_reconcile.delay()  # what beat does every 15 s
            return Deployment.objects.filter(pk=deployment.pk, ended_at__isnull=False).first()

        deployment = wait_for(ended, timeout=90, interval=1.0)
    finally:
        stop_worker(second)

    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    assert deployment.desired_weight == deployment.applied_weight == 100
    assert listener_weights(alb) == {"green": 100, "blue": 0}  # the load balancer agrees with the row
    assert list(deployment.stages.values_list("name", "state")).count(("25 % on green", "passed")) == 1
    assert "deployments.advance" in (tmp_path / "second.log").read_text()
