"""The engine's entry: a worker claims a deployment for a short lease and carries it as far as it
can go now, one step at a time dispatched by its state. Trouble from the outside world is waited
out with backoff a bounded number of times; lasting trouble ends or rolls back the deployment."""

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from changes.choices import ChangeStatus
from deployments.engine import stages
from deployments.engine.alerts import alert
from deployments.engine.endings import begin_rollback, end, rolling_back
from deployments.engine.monitoring import is_verifying, monitor
from deployments.engine.records import (
    LEASE,
    MAX_ATTEMPTS,
    PAUSED,
    LeaseLost,
    Passing,
    Refused,
    holder,
    save,
)
from deployments.engine.traffic import reconcile
from deployments.models import Deployment, DeploySettings
from deployments.outside import Outside, outside_for
from portal import clock
from portal.errors import OutsideError

logger = logging.getLogger(__name__)
D = Deployment.State

# Each step of a state: None to go on at once, else the seconds to wait.
HANDLERS: dict[str, Callable[[Deployment, Outside], float | None]] = {
    D.PREFLIGHT: stages.preflight,
    D.RELEASING: stages.releasing,
    D.DEPLOYING: stages.deploying,
    D.SMOKE: stages.smoke_testing,
    D.SHIFTING: stages.shifting,
    D.MONITORING: monitor,
}


def worker_name() -> str:
    return f"worker-{uuid.uuid4().hex[:12]}"


def advance(deployment_id: int, *, owner: str | None = None, outside: Outside | None = None) -> float | None:
    """Carries the deployment as far as it can go now. Returns the seconds until it wants to be
    looked at again, or None when it has ended, is paused, or another worker holds it."""
    owner = owner or worker_name()
    if not _claim(deployment_id, owner):
        return None
    token = holder.set(owner)
    try:
        for _ in range(50):
            deployment = Deployment.objects.select_related("environment__deploy_settings", "change").get(
                pk=deployment_id
            )
            if deployment.ended_at is not None:
                return None
            wait = _step(deployment, outside)
            if wait is not None:
                return _wait(deployment, wait)
            if not _claim(deployment_id, owner):  # moving on: keep the lease, or stop if it was lost
                return None
        return 0
    except LeaseLost:
        return None
    finally:
        holder.reset(token)
        Deployment.objects.filter(pk=deployment_id, lease_owner=owner).update(
            lease_until=None, lease_owner=""
        )


def _wait(deployment: Deployment, wait: float) -> float | None:
    """Keeps when to look again; a control that came in meanwhile (resume, promote, rollback)
    makes it now."""
    now = clock.now()
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        controlled = (
            locked.rollback_requested != deployment.rollback_requested
            or locked.promote_requested != deployment.promote_requested
            or locked.paused_at != deployment.paused_at
            or locked.ended_early_by_id != deployment.ended_early_by_id
        )
        if controlled:
            wait = 0.0
        later = timedelta(hours=1) if wait == PAUSED else timedelta(seconds=wait)
        locked.next_run_at = now + later
        locked.save(update_fields=["next_run_at"])
    return None if wait == PAUSED else wait


def _claim(deployment_id: int, owner: str) -> bool:
    now = clock.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    return bool(
        Deployment.objects.filter(free, pk=deployment_id, ended_at__isnull=True).update(
            lease_until=now + LEASE, lease_owner=owner
        )
    )


def _step(deployment: Deployment, outside: Outside | None) -> float | None:
    """One move; None to go on at once, else the seconds to wait."""
    try:
        deploy = DeploySettings.objects.filter(environment_id=deployment.environment_id).first()
        if deploy is None:
            raise Refused(f"{deployment.environment} has no deploy settings any more.")
        world = outside or outside_for(deploy)
        if deployment.state == D.ROLLING_BACK:
            return rolling_back(deployment, world)
        if deployment.applied_weight != deployment.desired_weight:
            reconcile(deployment, world)
            return None
        if deployment.rollback_requested:
            begin_rollback(deployment, deployment.rollback_reason or "Rollback requested.")
            return None
        if deployment.paused_at is not None:
            return PAUSED
        wait = HANDLERS[deployment.state](deployment, world)
        if deployment.attempts:
            save(deployment, attempts=0, error="")
        return wait
    except LeaseLost:
        raise
    except OutsideError as error:
        return _trouble(deployment, str(error), transient=error.transient, retry_at=error.retry_at)
    except Passing as error:
        return _trouble(deployment, str(error), transient=True, retry_at=error.retry_at)
    except Refused as error:
        return _trouble(deployment, str(error), transient=False)
    except Exception as error:  # a fault of ours or of a neighbour: retried, then stopped safely
        logger.exception("deployment %s: step failed", deployment.pk)
        return _trouble(deployment, f"{type(error).__name__}: {error}", transient=True)


def _trouble(
    deployment: Deployment, message: str, *, transient: bool, retry_at: datetime | None = None
) -> float | None:
    """A passing error waits with backoff (a bounded number of times); a lasting one stops the
    deployment: rolled back once the new version may have taken traffic, failed before. A rollback
    never gives up: it keeps trying (and is said to be stuck) with the environment kept locked."""
    rolling = deployment.state == D.ROLLING_BACK
    # A release that passed its verification is rolled back by a person, never by trouble watching it.
    watching = deployment.state == D.MONITORING and not is_verifying(deployment, clock.now())
    if rolling or watching or (transient and deployment.attempts < MAX_ATTEMPTS):
        attempts = min(deployment.attempts + 1, 99)
        save(deployment, attempts=attempts, error=message)
        if watching and attempts == MAX_ATTEMPTS:
            alert(deployment, "cannot be watched", f"The monitoring cannot check the live release: {message}")
        if retry_at is not None:
            return max((retry_at - clock.now()).total_seconds(), 1)
        backoff: int = min(2**attempts, 60)  # int ** int is Any to mypy (a negative power is a float)
        return backoff
    if deployment.state in (D.PREFLIGHT, D.RELEASING):
        end(deployment, D.FAILED, ChangeStatus.FAILED, message)
        return None
    begin_rollback(deployment, message)
    return None
