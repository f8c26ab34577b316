"""Deployment tasks: each advances one deployment as far as it can go now and schedules itself
for when it wants to be looked at again; the reconciler (beat) hands any deployment whose worker
died or whose message was lost to a worker, and alerts on one that makes no progress."""

import logging
from datetime import timedelta

from celery import shared_task

from deployments import engine
from deployments.models import Deployment
from portal import clock
from portal.queues import ROLLBACKS, queue

logger = logging.getLogger(__name__)
# Longer waits (the monitoring's checks, a paused deployment) are left to the reconciler, which
# beat runs every 15 s: no message waits hours in the broker.
COUNTDOWN_AT_MOST = 60


def wake(deployment_id: int, *, countdown: float | None = None, rollback: bool = False) -> None:
    """Sends the deployment to a worker; a rollback goes on the rollbacks queue, which no step of
    another deployment or notification waits in front of (portal.queues)."""
    options = {"queue": queue(ROLLBACKS)} if rollback else {}
    deployment_advance.apply_async((deployment_id,), countdown=countdown, **options)


def _again(deployment_id: int, wait: float | None) -> None:
    if wait is not None and wait <= COUNTDOWN_AT_MOST:
        rolling_back = Deployment.objects.filter(pk=deployment_id, rollback_requested=True).exists()
        wake(deployment_id, countdown=wait, rollback=rolling_back)


@shared_task(name="deployments.advance", ignore_result=True, acks_late=True)
def deployment_advance(deployment_id: int) -> float | None:
    wait = engine.advance(deployment_id)
    _again(deployment_id, wait)
    return wait


@shared_task(name="deployments.reconcile", ignore_result=True)
def deployments_reconcile() -> int:
    """Beat runs this every 15 seconds: every running deployment that is due and that no worker
    holds is advanced (in this worker: a lost message is never waited for)."""
    now = clock.now()
    due = Deployment.objects.filter(
        ended_at__isnull=True, next_run_at__lte=now - timedelta(seconds=5)
    ).exclude(lease_until__gt=now)
    taken = 0
    for pk in due.values_list("pk", flat=True):
        try:
            wait = engine.advance(pk)
        except Exception:  # one deployment's trouble must not stop the others being looked at
            logger.exception("deployment %s could not be advanced", pk)
            continue
        taken += 1
        _again(pk, wait)
    engine.stuck_alerts()
    return taken
