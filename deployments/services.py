"""Writes to an environment's deploy settings and to deployments (deploy, pause, resume, promote,
roll back), each guarded and audited in one transaction; the engine (deployments/engine.py)
carries a deployment forward from there."""

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from catalogue.models import Environment
from catalogue.services import snapshot
from deployments.models import Colour, Deployment, DeploySettings
from portal import clock
from portal.errors import Refusal
from portal.models import User
from portal.roles import Right, has_right, missing_right_message, require_right
from portal.services import audit_record

if TYPE_CHECKING:
    from changes.models import ChangeRequest


class DeployRefused(Refusal):
    """The act is refused (409 when it clashes with the state of things), with every reason."""

    def __init__(self, reasons: list[str], *, conflict: bool = True) -> None:
        super().__init__(" ".join(reasons), conflict=conflict, extra={"reasons": reasons})
        self.reasons = reasons


@transaction.atomic
def deploy_settings_save(*, actor: User, environment: Environment, **fields: Any) -> DeploySettings:
    """Makes or edits how an environment is deployed to; refused while a deployment runs there."""
    require_right(actor, Right.ENVIRONMENT_MANAGE)
    environment = Environment.objects.select_for_update().get(pk=environment.pk)
    running = Deployment.running_in(environment.pk)
    if running is not None:
        raise DeployRefused(
            [f"{environment} is being deployed to ({running.change.number}): change it after."]
        )
    deploy = DeploySettings.objects.filter(environment=environment).first()
    before = snapshot(deploy) if deploy else None
    deploy = deploy or DeploySettings(environment=environment)
    for name, value in fields.items():
        setattr(deploy, name, value)
    deploy.full_clean()
    deploy.save()
    after = snapshot(deploy)
    # The audit trail says whether the deployer's secret was set or changed, never what it is.
    secret = before["deployer_secret"] if before else ""
    if before:
        before["deployer_secret"] = "set" if secret else ""
    if not deploy.deployer_secret:
        after["deployer_secret"] = ""
    else:
        after["deployer_secret"] = "set" if not secret or secret == deploy.deployer_secret else "changed"
    audit_record(
        actor=actor,
        action="environment.deploy_settings",
        target=environment,
        before=before,
        after=after,
    )
    return deploy


# Deployments.


def deploy_refusals(change: "ChangeRequest", *, gates: list[dict[str, Any]] | None = None) -> list[str]:
    """Why the change may not deploy now, in words (nothing when it may); `gates` when the
    caller has them already."""
    from changes.choices import ChangeStatus, ChangeType
    from changes.selectors import change_quorum, deploy_gates

    ready = (ChangeStatus.SCHEDULED,) + (
        (ChangeStatus.APPROVED,) if change.change_type == ChangeType.EMERGENCY else ()
    )
    reasons = []
    if change.status not in ready:
        reasons.append(
            f"{change.number} is {change.get_status_display().lower()}: only a scheduled change deploys."
        )
    reasons += [
        f"{g['name']}: {g['detail']}"
        for g in deploy_gates(change, change_quorum(change))
        if g["state"] != "ok"
    ]
    if not DeploySettings.objects.filter(environment_id=change.environment_id).exists():
        reasons.append(
            f"{change.environment} has no deploy settings: a policy admin sets its load balancer first."
        )
    running = Deployment.running_in(change.environment_id)
    if running is not None and running.state == Deployment.State.MONITORING:
        reasons.append(
            f"{change.environment} is watching {running.change.number}'s release until "
            f"{running.monitor_until:%H:%M} UTC: one at a time (a release manager may end the "
            "monitoring early)."
        )
    elif running is not None:
        reasons.append(
            f"{change.environment} is being deployed to by {running.change.number}: one at a time."
        )
    return reasons


def deploy(*, actor: User, change: "ChangeRequest") -> Deployment:
    """Starts the deployment of a ready change: one per environment at a time (the database
    refuses a second), the change moved to deploying, all audited; the engine takes it from
    there once the transaction commits."""
    from changes import custody
    from changes.choices import ChangeStatus
    from changes.models import ChangeRequest
    from changes.services import change_move

    require_right(actor, Right.DEPLOYMENT_DEPLOY)
    try:
        with transaction.atomic():
            change = (
                ChangeRequest.objects.select_for_update()
                .select_related("environment__approval_policy")
                .get(pk=change.pk)
            )
            # The environment's row: its deploy settings are not edited while a deployment starts.
            Environment.objects.select_for_update().get(pk=change.environment_id)
            # Read live from the repository: no commit arrived since the approval.
            reasons = deploy_refusals(change) + custody.deploy_refusals(change)
            if reasons:
                raise DeployRefused(reasons)
            deploy = change.environment.deploy_settings
            now = clock.now()
            deployment = Deployment.objects.create(
                change=change,
                environment=change.environment,
                started_by=actor,
                created_at=now,
                from_colour=deploy.live_colour,
                to_colour=Colour(deploy.live_colour).other,
                plan=list(deploy.weights),
                bake_seconds=deploy.bake_seconds,
                analysis_seconds=deploy.analysis_seconds,
                state_since=now,
                next_run_at=now,
                custody=custody.chain(change),  # what was checked, kept for a later reader
                custody_checked_at=now,
            )
            audit_record(
                actor=actor,
                action="deployment.start",
                target=deployment,
                after={
                    "change": change.number,
                    "environment": change.environment.name,
                    "from": deployment.from_colour,
                    "to": deployment.to_colour,
                    "plan": deployment.plan,
                },
            )
            change_move(
                change=change, status=ChangeStatus.DEPLOYING, actor=actor, note=f"deployment {deployment.pk}"
            )
            _wake_later(deployment)
            return deployment
    except IntegrityError:
        raise DeployRefused([f"{change.environment} is being deployed to already: one at a time."]) from None


def _wake_later(deployment: Deployment) -> None:
    from deployments.tasks import wake

    transaction.on_commit(functools.partial(wake, deployment.pk, rollback=deployment.rollback_requested))


def _control(
    actor: User,
    deployment: Deployment,
    action: str,
    *,
    right: str = Right.DEPLOYMENT_DEPLOY,
    guard: Callable[[Deployment], str | None] | None = None,
    **fields: Any,
) -> Deployment:
    """Writes a person's control on a running deployment (`guard` checks the locked row and says
    why not), audited, and wakes the engine now."""
    require_right(actor, right)
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.ended_at is not None:
            raise DeployRefused([f"Deployment {locked.pk} has ended ({locked.get_state_display().lower()})."])
        refusal = guard(locked) if guard else None
        if refusal:
            raise DeployRefused([refusal])
        fields["next_run_at"] = clock.now()  # looked at again now
        before = {name: getattr(locked, name) for name in fields}
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save(update_fields=list(fields))
        audit_record(
            actor=actor,
            action=f"deployment.{action}",
            target=locked,
            before={k: str(v) for k, v in before.items()},
            after={k: str(v) for k, v in fields.items()},
        )
        _wake_later(locked)
        return locked


def deployment_pause(*, actor: User, deployment: Deployment) -> Deployment:
    """Holds the current weights; the bake clock keeps running, the next step waits for resume."""

    def guard(locked: Deployment) -> str | None:
        if locked.paused_at is not None:
            return f"Deployment {locked.pk} is paused already."
        if locked.state == Deployment.State.MONITORING:
            return f"Deployment {locked.pk} is live and monitored: there is no step to hold."
        if locked.state == Deployment.State.ROLLING_BACK or locked.rollback_requested:
            return f"Deployment {locked.pk} is rolling back: a rollback is not paused."
        return None

    return _control(actor, deployment, "pause", guard=guard, paused_at=clock.now())


def deployment_resume(*, actor: User, deployment: Deployment) -> Deployment:
    def guard(locked: Deployment) -> str | None:
        return None if locked.paused_at is not None else f"Deployment {locked.pk} is not paused."

    return _control(actor, deployment, "resume", guard=guard, paused_at=None, error="")


def deployment_promote(*, actor: User, deployment: Deployment) -> Deployment:
    """Skips the rest of the current step's bake (its checks still run once)."""

    def guard(locked: Deployment) -> str | None:
        if locked.state != Deployment.State.SHIFTING or locked.rollback_requested:
            return f"Deployment {locked.pk} is not shifting traffic: there is no bake to skip."
        return None

    return _control(actor, deployment, "promote", guard=guard, promote_requested=True, paused_at=None)


def deployment_end_monitoring(*, actor: User, deployment: Deployment, reason: str) -> Deployment:
    """A release manager ends the monitoring early, saying why: the change completes now (with a
    regression seen, this is the person's call that it is acceptable)."""
    if not reason.strip():
        raise DeployRefused(["Say why the monitoring ends early."], conflict=False)

    def guard(locked: Deployment) -> str | None:
        if locked.state != Deployment.State.MONITORING or locked.rollback_requested:
            return f"Deployment {locked.pk} is not being monitored: there is no monitoring to end."
        return None

    return _control(
        actor,
        deployment,
        "end_monitoring",
        guard=guard,
        ended_early_by=actor,
        ended_early_reason=reason.strip(),
    )


def deployment_abandon(*, actor: User, deployment: Deployment, reason: str) -> Deployment:
    """Ends a running deployment whose load balancer no longer exists (an environment rebuilt, the
    demo's simulated production restarted), asking nothing of AWS: it failed, with the reason, and
    its change with it; audited. Policy admins only: the engine cannot carry it on or back."""
    from changes.choices import ChangeStatus
    from changes.services import change_move

    require_right(actor, Right.ENVIRONMENT_MANAGE)
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().select_related("change").get(pk=deployment.pk)
        if locked.ended_at is not None:
            raise DeployRefused([f"Deployment {locked.pk} has ended ({locked.get_state_display().lower()})."])
        now = clock.now()
        before = {"state": locked.state}
        if not locked.can_transition_to(Deployment.State.FAILED):
            raise DeployRefused([locked.transition_error(Deployment.State.FAILED)])
        locked.state, locked.ended_at, locked.error = Deployment.State.FAILED, now, f"Abandoned: {reason}"
        locked.lease_until, locked.lease_owner = None, ""
        locked.save(update_fields=["state", "ended_at", "error", "lease_until", "lease_owner"])
        audit_record(
            actor=actor,
            action="deployment.abandon",
            target=locked,
            before=before,
            after={"state": locked.state, "reason": reason},
        )
        change_move(change=locked.change, status=ChangeStatus.FAILED, actor=actor, note=locked.error)
        return locked


def rollback_right(user: User | AnonymousUser, deployment: Deployment) -> str | None:
    """The right by which this person may roll this deployment back (release managers any; SREs
    one whose change fixes an open incident, or one an open incident follows), or None: an
    SRE's right ends with the incident."""
    if has_right(user, Right.DEPLOYMENT_ROLLBACK):
        return Right.DEPLOYMENT_ROLLBACK
    fixes = deployment.change.incident
    if has_right(user, Right.DEPLOYMENT_ROLLBACK_INCIDENT) and (
        (fixes is not None and fixes.resolved_at is None)
        or deployment.incidents.filter(resolved_at__isnull=True).exists()
    ):
        return Right.DEPLOYMENT_ROLLBACK_INCIDENT
    return None


def deployment_rollback(
    *, actor: User, deployment: Deployment, reason: str, revert: bool = False
) -> Deployment:
    """Sends all traffic back to the previous colour: during the deployment, or after it while
    the old colour is still kept (the environment's latest deployment, nothing newer). With
    `revert`, the code is reverted in the repository too."""
    right = rollback_right(actor, deployment)
    if right is None:
        raise PermissionDenied(missing_right_message(Right.DEPLOYMENT_ROLLBACK))
    if not reason.strip():
        raise DeployRefused(["Say why it is rolled back."], conflict=False)
    if deployment.ended_at is None:
        return _control(
            actor,
            deployment,
            "rollback",
            right=right,
            guard=lambda locked: (
                f"Deployment {locked.pk} is rolling back already." if locked.rollback_requested else None
            ),
            rollback_requested=True,
            rollback_reason=reason,
            revert_requested=revert,
            rollback_by=actor,
        )
    return _reopen_for_rollback(actor, deployment, reason, revert, right)


def _reopen_for_rollback(
    actor: User, deployment: Deployment, reason: str, revert: bool, right: str
) -> Deployment:
    require_right(actor, right)
    try:
        with transaction.atomic():
            locked = (
                Deployment.objects.select_for_update(of=("self",))
                .select_related("environment__deploy_settings")
                .get(pk=deployment.pk)
            )
            latest = (
                Deployment.objects.filter(environment=locked.environment)
                .order_by("-created_at", "-id")
                .first()
            )
            assert latest is not None  # the locked one, at least
            live = locked.environment.deploy_settings.live_colour
            if (
                locked.state != Deployment.State.SUCCEEDED
                or latest.pk != locked.pk
                or live != locked.to_colour
            ):
                state = locked.get_state_display().lower()
                raise DeployRefused(
                    [
                        f"Deployment {locked.pk} is not the live release any more ({state}): its old colour "
                        "is not kept. Deploy a change for the older version instead."
                    ]
                )
            if not locked.can_transition_to(Deployment.State.ROLLING_BACK):
                raise DeployRefused([locked.transition_error(Deployment.State.ROLLING_BACK)])
            now = clock.now()
            locked.state, locked.ended_at, locked.state_since, locked.next_run_at = (
                Deployment.State.ROLLING_BACK,
                None,
                now,
                now,
            )
            locked.rollback_requested, locked.rollback_reason, locked.revert_requested = True, reason, revert
            locked.rollback_by = actor
            locked.save()
            audit_record(
                actor=actor,
                action="deployment.rollback",
                target=locked,
                before={"state": "succeeded"},
                after={"state": "rolling_back", "reason": reason, "revert": revert},
            )
            _wake_later(locked)
            return locked
    except IntegrityError:
        raise DeployRefused(
            [f"{deployment.environment} is being deployed to: roll back after that ends."]
        ) from None
