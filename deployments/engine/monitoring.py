"""The new colour is live at 100 %: the immediate verification (a failure rolls back by itself),
then the short-term monitoring (a regression is told, with a rollback one click away)."""

from datetime import datetime, timedelta

from django.db import transaction

from changes.choices import ChangeStatus
from changes.services import change_move, change_notify
from deployments import evidence
from deployments.engine.alerts import alert
from deployments.engine.endings import complete
from deployments.engine.measuring import judged
from deployments.engine.records import Refused, close, move, open_stage, record, save
from deployments.engine.traffic import make_live, weights_held
from deployments.judge import CheckName
from deployments.models import Deployment, Stage
from deployments.outside import Outside
from portal import clock

D = Deployment.State


def go_live(deployment: Deployment) -> None:
    """All traffic is on the new colour: it is live, and watched (the old colour kept warm) until
    the monitoring passes; unless a rollback was asked for meanwhile (it then goes on)."""
    deploy = deployment.environment.deploy_settings
    with transaction.atomic():
        if Deployment.objects.select_for_update().filter(pk=deployment.pk, rollback_requested=True).exists():
            return
        make_live(deployment, deployment.to_colour)
        now = clock.now()
        note = (
            f"{deployment.version} is live on {deployment.to_colour}; monitoring until it has proved itself."
        )
        move(
            deployment,
            D.MONITORING,
            note=note,
            live_at=now,
            monitor_until=now + timedelta(seconds=deploy.verify_seconds + deploy.monitor_seconds),
            next_run_at=now + timedelta(seconds=min(deploy.analysis_seconds, deploy.verify_seconds or 1)),
        )
        change_move(change=deployment.change, status=ChangeStatus.VERIFYING, actor=None, note=note)
        evidence.prove_during(deployment)


def monitor(deployment: Deployment, world: Outside) -> float | None:
    """Each a check of the live colour every interval, on the beat's clock rather than one long
    countdown. It passes by itself at `monitor_until` when nothing regressed, or when a release
    manager ends it; a regressed release past its time waits for a person, unchecked."""
    deploy = deployment.environment.deploy_settings
    now = clock.now()
    # Both written by go_live, with the move to monitoring.
    assert deployment.live_at is not None and deployment.monitor_until is not None
    verify_end = deployment.live_at + timedelta(seconds=deploy.verify_seconds)
    if deployment.ended_early_by_id:
        complete(deployment)
        return None
    if now < deployment.next_run_at:
        return (deployment.next_run_at - now).total_seconds()
    if now >= deployment.monitor_until and deployment.regressed_at:  # a person rolls back, or ends it
        save(deployment, next_run_at=now + timedelta(seconds=deploy.monitor_interval_seconds))
        return deploy.monitor_interval_seconds
    verifying = is_verifying(deployment, deployment.state_since)
    kind, name = (
        (Stage.Kind.VERIFY, "Immediate verification") if verifying else (Stage.Kind.MONITOR, "Monitoring")
    )
    if not weights_held(deployment, world):
        return None
    stage = open_stage(
        deployment, kind, f"{name} of {deployment.version} on {deployment.to_colour}", weight=100
    )
    verdict = judged(deployment, world, since=deployment.state_since, until=now)
    record(stage, verdict.checks)
    if verdict.failed and verifying:
        close(stage, Stage.State.FAILED, verdict.failed)
        raise Refused(f"Immediate verification at 100 %: {verdict.failed}.")
    if verdict.failed and not deployment.regressed_at:
        _regressed(deployment, verdict.failed)
    if now >= verify_end:  # its last round judged: the verification is over
        _verified(deployment)
    if now >= deployment.monitor_until and not deployment.regressed_at:  # its last round judged too
        complete(deployment)
        return None
    # Within the verification a round lands on its end, so all of it is judged as verification.
    if now < verify_end:
        wait = min(deploy.analysis_seconds, (verify_end - now).total_seconds())
    else:
        wait = min(deploy.monitor_interval_seconds, (deployment.monitor_until - now).total_seconds())
    wait = max(wait, 1)
    save(deployment, state_since=now, next_run_at=now + timedelta(seconds=wait))
    return wait


def is_verifying(deployment: Deployment, moment: datetime) -> bool:
    """Whether `moment` (a round's start) falls in the live release's immediate verification."""
    if deployment.live_at is None:
        return False
    deploy = deployment.environment.deploy_settings
    return moment < deployment.live_at + timedelta(seconds=deploy.verify_seconds)


def _verified(deployment: Deployment) -> None:
    """The immediate verification's time is over without a failure: its stage passed, unless no
    round could judge the metrics (too little traffic), which is said rather than passed."""
    running = Stage.objects.filter(deployment=deployment, kind=Stage.Kind.VERIFY, state=Stage.State.RUNNING)
    for stage in running:
        if any(c["name"] == CheckName.ERROR_RATE for c in stage.checks):
            close(stage, Stage.State.PASSED)
            continue
        words = "Too little traffic reached the live release to judge its metrics during the verification."
        with transaction.atomic():
            close(stage, Stage.State.STOPPED, words)
            alert(
                deployment, "was not verified", f"{words} It stays live and is monitored: watch it closely."
            )


def _regressed(deployment: Deployment, failed: str) -> None:
    """A regression while monitoring: kept on the row (the monitoring no longer passes by
    itself), and told to the release manager and the stakeholders with the way to roll back."""
    now = clock.now()
    words = f"Regression on {deployment.to_colour} ({deployment.version}) while monitoring: {failed}."
    body = f"{words} Roll back in one click, the old colour is kept warm: {deployment.get_absolute_url()}"
    with transaction.atomic():
        save(
            deployment,
            action="deployment.regressed",
            after={"note": words},
            regression=words,
            regressed_at=now,
        )
        alert(deployment, "regressed", body, people=[deployment.started_by])
        # The requester, the stakeholders and their channels.
        change_notify(
            deployment.change, f"{deployment.change.number} regressed in {deployment.environment}", body
        )
