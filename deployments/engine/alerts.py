"""What the engine tells people: the environment's alert channel and the requester, and the
deployments said to be stuck (no progress, paused or regressed for long)."""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from deployments.engine.records import save
from deployments.models import Deployment
from portal import clock
from portal.models import User
from portal.services import notification_send

logger = logging.getLogger(__name__)
D = Deployment.State
# A running deployment this late on its next look, or paused this long, is said to be stuck.
STUCK_AFTER = timedelta(minutes=10)
PAUSED_TOO_LONG = timedelta(hours=1)
ALERT_EVERY = timedelta(hours=1)


def alert(
    deployment: Deployment, what: str, body: str, *, people: Iterable[User | None] | None = None
) -> None:
    """Tells the environment's alert channel and, by e-mail, `people` (the requester unless named)."""
    deploy = deployment.environment.deploy_settings
    subject = f"{deployment.change.number} {what} in {deployment.environment}"
    notification_send(channel="slack", recipient=deploy.alert_channel, subject=subject, body=body)
    people = [deployment.change.requester] if people is None else people
    emails = {p.email for p in people if p is not None and p.email}
    for email in sorted(emails):
        notification_send(channel="email", recipient=email, subject=subject, body=body)


def stuck_alerts() -> list[int]:
    """Tells the environment's alert channel and the requester about each deployment that makes no
    progress (overdue, or paused for long), at most once an hour each; returns their ids."""
    now = clock.now()
    stuck = Deployment.objects.filter(ended_at__isnull=True).filter(
        Q(paused_at__isnull=True, next_run_at__lt=now - STUCK_AFTER)
        | Q(paused_at__lt=now - PAUSED_TOO_LONG)
        | Q(state=D.ROLLING_BACK, state_since__lt=now - STUCK_AFTER)
        | Q(state=D.MONITORING, regressed_at__isnull=False, monitor_until__lt=now - PAUSED_TOO_LONG)
    )
    stuck = stuck.filter(Q(alerted_at__isnull=True) | Q(alerted_at__lt=now - ALERT_EVERY))
    told = []
    for deployment in stuck.select_related("environment__deploy_settings", "change__requester"):
        try:
            told.append(_tell_stuck(deployment, now))
        except Exception:  # one deployment's trouble must not silence the others
            logger.exception("deployment %s: could not say it is stuck", deployment.pk)
    return told


def _tell_stuck(deployment: Deployment, now: datetime) -> int:
    since: datetime | None
    if deployment.paused_at is not None:
        since, why = deployment.paused_at, "has been paused"
    elif deployment.state == D.ROLLING_BACK:
        since, why = deployment.state_since, "has been rolling back"
    elif deployment.regressed_at is not None:
        since, why = (
            deployment.monitor_until,
            "has waited with a regression (roll it back, or end the monitoring)",
        )
    else:
        since, why = deployment.next_run_at, "has made no progress"
    assert since is not None  # a regression is seen only once live, and monitored until a time
    minutes = int((now - since).total_seconds() // 60)
    state = deployment.get_state_display().lower()
    where = f"{state}, {deployment.applied_weight} % on {deployment.to_colour}"
    body = f"Deployment {deployment.pk} ({where}) {why} for {minutes} minutes. {deployment.error}".strip()
    with transaction.atomic():
        save(deployment, action="deployment.stuck", after={"note": body}, alerted_at=now)
        alert(deployment, "is stuck", body)
    return deployment.pk
