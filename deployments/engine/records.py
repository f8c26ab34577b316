"""Every write of a deployment's row and of its stages. A write checks that this worker still
holds the lease (and renews it) and that a change of state is an allowed move, and is audited in
the same transaction."""

import logging
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from deployments.models import Deployment, Stage
from portal import clock
from portal.services import audit_record

logger = logging.getLogger(__name__)
D = Deployment.State
LEASE = timedelta(seconds=30)
# Passing errors (throttling, the network) are retried with backoff this many times in a row.
MAX_ATTEMPTS = 8
PAUSED = -1.0  # a paused deployment waits for resume (or a rollback), which wakes it


class Refused(Exception):
    """A step that cannot succeed: the deployment stops (and rolls back once traffic may move)."""


class Passing(Exception):
    """A step that may succeed later: waits with backoff, or until `retry_at`."""

    def __init__(self, message: str, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class IllegalMove(RuntimeError):
    """A move the deployment's map of allowed moves does not have: a bug, never an outside fault."""


class LeaseLost(Exception):
    """Another worker took the deployment over (this one was too slow): this one stops writing."""


# The worker advancing a deployment in this thread, checked at every write.
holder: ContextVar[str | None] = ContextVar("deployment_holder", default=None)


def save(
    deployment: Deployment, *, action: str | None = None, after: dict[str, Any] | None = None, **fields: Any
) -> None:
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        owner = holder.get()
        if owner is not None and (locked.lease_owner != owner or locked.ended_at is not None):
            raise LeaseLost(f"deployment {deployment.pk} is no longer held by {owner}")
        if owner is not None:
            fields.setdefault("lease_until", clock.now() + LEASE)  # each write renews the lease
        moving = "state" in fields and fields["state"] != locked.state
        if moving and not locked.can_transition_to(fields["state"]):
            raise IllegalMove(locked.transition_error(fields["state"]))
        before = {name: getattr(locked, name) for name in fields}
        for name, value in fields.items():
            setattr(locked, name, value)
            setattr(deployment, name, value)
        locked.save(update_fields=list(fields))
        if action:
            audit_record(
                actor=None,
                action=action,
                target=locked,
                before=_plain(before),
                after={**_plain(fields), **(after or {})},
            )
    if moving:
        logger.info(
            "deployment %s of %s: %s -> %s%s",
            deployment.pk,
            deployment.change_id,
            before["state"],
            fields["state"],
            f" ({after['note']})" if after and after.get("note") else "",
        )


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """What an audit event keeps of the fields written (not the lease's bookkeeping)."""
    return {
        k: v.isoformat() if hasattr(v, "isoformat") else v
        for k, v in values.items()
        if k not in ("lease_until", "lease_owner")
    }


def move(deployment: Deployment, state: str, note: str = "", **fields: Any) -> None:
    now = clock.now()
    fields = {"state_since": now, "next_run_at": now, **fields}
    save(deployment, action="deployment.state", after={"note": note} if note else None, state=state, **fields)


def open_stage(deployment: Deployment, kind: str, name: str, weight: int | None = None) -> Stage:
    """The running stage of this kind and weight, opened when there is none."""
    stage = (
        Stage.objects.filter(deployment=deployment, kind=kind, weight=weight, state=Stage.State.RUNNING)
        .order_by("-id")
        .first()
    )
    if stage is None:
        stage = Stage.objects.create(
            deployment=deployment, kind=kind, name=name, weight=weight, started_at=clock.now()
        )
    return stage


def record(stage: Stage, checks: list[dict[str, Any]], *, replace: bool = False) -> None:
    """Keeps the checks' evidence on the stage, stamped; `replace` updates checks of the same name
    (a poll) instead of adding another round (a judgement)."""
    at = clock.now().isoformat()
    stamped = [{**check, "at": at} for check in checks]
    if replace:
        names = {c["name"] for c in stamped}
        stage.checks = [c for c in stage.checks if c["name"] not in names] + stamped
    else:
        stage.checks = stage.checks + stamped
    stage.save(update_fields=["checks"])


def close(stage: Stage, state: str, message: str = "") -> None:
    stage.state, stage.ended_at, stage.message = state, clock.now(), message
    stage.save(update_fields=["state", "ended_at", "message"])


def pass_on(stage: Stage, deployment: Deployment, state: str, **fields: Any) -> None:
    """The stage passed and the deployment moves on, at once: a stop between the two would run
    the stage again (and ask the deployer twice)."""
    with transaction.atomic():
        close(stage, Stage.State.PASSED)
        move(deployment, state, **fields)
