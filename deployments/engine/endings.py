"""How a deployment ends: completed once the monitoring passed, rolled back (traffic to the old
colour, and the code reverted when that was asked), or failed before any traffic moved. Its
change ends with it, in the same transaction."""

from django.db import transaction

from changes import releases
from changes.choices import ChangeStatus
from changes.services import ChangeError, change_move
from deployments import evidence
from deployments.engine.alerts import alert
from deployments.engine.records import close, move, open_stage, record, save
from deployments.engine.traffic import NOT_THERE, make_live, set_weight
from deployments.models import Deployment, Stage
from deployments.outside import Outside
from integrations import scm
from integrations.aws import AwsError
from portal import clock, hooks
from portal.models import User

D = Deployment.State


def complete(deployment: Deployment) -> None:
    """The monitoring passed (or was ended early): the change is completed, its After items
    proved by the evidence, the report kept, the environment unlocked; unless a rollback was asked
    for meanwhile (it then goes on)."""
    if deployment.ended_early_by_id:
        note = f"Monitoring ended early by {deployment.ended_early_by}: {deployment.ended_early_reason}"
    else:
        note = f"{deployment.version} passed its monitoring on {deployment.to_colour}."
    with transaction.atomic():
        if Deployment.objects.select_for_update().filter(pk=deployment.pk, rollback_requested=True).exists():
            return
        for stage in Stage.objects.filter(deployment=deployment, state=Stage.State.RUNNING):
            close(stage, Stage.State.PASSED, "ended early" if deployment.ended_early_by_id else "")
        evidence.prove_after(deployment)
        save(deployment, report=evidence.report(deployment))
        end(deployment, D.SUCCEEDED, ChangeStatus.COMPLETED, note)


def end(deployment: Deployment, state: str, change_status: str, note: str) -> None:
    """The deployment ends, its change with it; one that rolled back by itself after users reached
    the new colour opens a P1 incident linked to it (in the same transaction). One stopped before
    any traffic moved is told to the alert channel, not paged."""
    with transaction.atomic():
        took_traffic = Stage.objects.filter(deployment=deployment, kind=Stage.Kind.TRAFFIC).exists()
        if state == D.ROLLED_BACK and deployment.rollback_by_id is None and took_traffic:
            told = hooks.deployment_rolled_back.send(deployment=deployment)
            note = " ".join([note, *(sentence for sentence in told if sentence)])
        now = clock.now()
        save(
            deployment,
            action="deployment.state",
            after={"note": note},
            state=state,
            state_since=now,
            next_run_at=now,
            ended_at=now,
            error="" if state == D.SUCCEEDED else note,
            lease_until=None,
            lease_owner="",
        )
        change_move(change=deployment.change, status=change_status, actor=None, note=note)
    if state != D.SUCCEEDED:
        alert(deployment, state.replace("_", " "), note)


def begin_rollback(deployment: Deployment, reason: str) -> None:
    for stage in Stage.objects.filter(deployment=deployment, state=Stage.State.RUNNING):
        close(stage, Stage.State.STOPPED, "stopped by the rollback")
    save(deployment, attempts=0)
    move(
        deployment,
        D.ROLLING_BACK,
        note=reason,
        rollback_reason=reason,
        rollback_requested=True,
        paused_at=None,
    )


def rolling_back(deployment: Deployment, world: Outside) -> float | None:
    stage = open_stage(deployment, Stage.Kind.ROLLBACK, f"Rollback to {deployment.from_colour}", weight=0)
    try:
        if deployment.applied_weight != 0 or deployment.desired_weight != 0:
            set_weight(deployment, world, 0)
    except AwsError as error:
        if error.code not in NOT_THERE or deployment.applied_weight != 0:
            raise
        # The listener (or rule) is not there: it never took traffic to the new colour.
        save(deployment, action="deployment.weights", desired_weight=0)
    record(
        stage,
        [
            Stage.evidence(
                "Traffic",
                True,
                f"{deployment.from_colour} 100 %, {deployment.to_colour} 0 %",
                detail="all traffic on the old colour",
            )
        ],
    )
    close(stage, Stage.State.PASSED)
    with transaction.atomic():
        make_live(deployment, deployment.from_colour)  # when it is rolled back after it went live
    if deployment.revert_requested and deployment.rollback_by is not None:
        _revert(deployment, stage, deployment.rollback_by)
    end(deployment, D.ROLLED_BACK, ChangeStatus.ROLLED_BACK, f"Rolled back: {deployment.rollback_reason}")
    return None


def _revert(deployment: Deployment, stage: Stage, actor: User) -> None:
    """The code half of the rollback, asked for with it by `actor`: its failure is told, not a
    reason to leave the traffic where it is."""
    try:
        reverted = releases.release_revert(actor=actor, change=deployment.change, scm=scm.repository())
        record(stage, [Stage.evidence("Code revert", True, reverted.commit[:10], detail=reverted.url)])
    except (ChangeError, scm.ScmError) as refused:
        words = refused.messages[0] if hasattr(refused, "messages") else str(refused)
        record(stage, [Stage.evidence("Code revert", False, detail=words)])
