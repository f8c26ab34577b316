"""Every write to an incident: guarded, audited, and told on its timeline, in one transaction.

Declared by a person (who needs the right), by a deployment that rolled back by itself, or by an
alarm; then acknowledged, mitigated and resolved in that order (a step may be skipped, never
undone). Acknowledging a resolved incident, or resolving one twice, is refused with the reason."""

import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from incidents.models import Incident, IncidentStatus, PostMortem, Severity, TimelineEntry
from portal import clock
from portal.roles import Right, has_right, missing_right_message
from portal.services import audit_record, notification_send

# Where incidents are told on Slack, besides PagerDuty's page.
INCIDENT_CHANNEL = "#incidents"
# PagerDuty's severity for each of ours.
PAGE_SEVERITY = {Severity.P0: "critical", Severity.P1: "error", Severity.P2: "warning", Severity.P3: "info"}


class IncidentRefused(ValidationError):
    """The act clashes with the incident's state (a 409), in words."""

    def __init__(self, message: str):
        super().__init__(message)
        self.conflict = True


def page(incident: Incident, action: str) -> TimelineEntry:
    """Triggers, acknowledges or resolves the incident's page on PagerDuty (one dedup key for all
    three), sent by a task with retries after the caller's transaction; the timeline says so, and
    the page's delivery is followed on its notification."""
    event = {"event_action": action, "severity": PAGE_SEVERITY[incident.severity], "source": "greenlight"}
    sent = notification_send(
        channel="pagerduty",
        recipient=incident.dedup_key,
        subject=f"{incident.number} {incident.severity}: {incident.title}",
        body=json.dumps(event),
    )
    said = {"trigger": "Paged", "acknowledge": "Page acknowledged", "resolve": "Page resolved"}[action]
    return timeline_add(
        incident, TimelineEntry.Kind.PAGE, f"{said} on PagerDuty.", notification=sent.pk, action=action
    )


def timeline_add(
    incident: Incident, kind: str, text: str, *, actor=None, public: bool = False, **data
) -> TimelineEntry:
    """One entry on the incident's timeline (in the caller's transaction); a `public` one is an
    update the status page shows, when the incident itself is public."""
    return TimelineEntry.objects.create(
        incident=incident, at=clock.now(), kind=kind, actor=actor, text=text, data=data,
        public=public and incident.public,
    )  # fmt: skip


@transaction.atomic
def incident_declare(
    *,
    actor,
    title: str,
    severity: str,
    summary: str = "",
    services=(),
    public: bool = False,
    source: str = Incident.Source.PERSON,
    deployment=None,
    change=None,
    started_at=None,
    alarm: str = "",
) -> Incident:
    """Declares an incident (the portal itself when `actor` is None), linked to what it follows."""
    if actor is not None and not has_right(actor, Right.INCIDENT_DECLARE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_DECLARE))
    if not title.strip():
        raise ValidationError("title: say what is broken.")
    if severity not in Severity.values:
        raise ValidationError(f"severity: one of {', '.join(Severity.values)}.")
    now = clock.now()
    if started_at is not None and started_at > now:
        raise ValidationError("started_at: the trouble cannot begin in the future.")
    incident = Incident.objects.create(
        title=title.strip()[:200], severity=severity, summary=summary.strip(), source=source,
        declared_by=actor, public=public, deployment=deployment, change=change,
        started_at=started_at, detected_at=now, created_at=now, alarm=alarm,
    )  # fmt: skip
    incident.services.set(services)
    audit_record(
        actor=actor,
        action="incident.declare",
        target=incident,
        after={
            "title": incident.title, "severity": severity, "source": source, "public": public,
            "services": sorted(s.name for s in services),
            "deployment": deployment.pk if deployment else None, "change": change.number if change else None,
        },
    )  # fmt: skip
    who = actor.display_name if actor is not None else Incident.Source(source).label
    timeline_add(
        incident, TimelineEntry.Kind.DECLARED, f"{severity} declared: {incident.title} ({who}).", actor=actor,
        public=True,
    )  # fmt: skip
    if deployment is not None:
        timeline_add(
            incident,
            TimelineEntry.Kind.LINK,
            f"Follows deployment {deployment.pk} of {deployment.change.number} ({deployment.version}) "
            f"to {deployment.environment}.",
            deployment=deployment.pk,
        )
    page(incident, "trigger")
    notification_send(
        channel="slack",
        recipient=INCIDENT_CHANNEL,
        subject=f"{incident.number} {severity} declared: {incident.title}",
        body=incident.summary or f"Declared by {who}.",
    )
    return incident


def _moved(
    actor, incident: Incident, status: str, *, stamp: str, note: str = "", by: str = "", paged: bool = False
) -> Incident:
    """Moves the incident on, if its status allows, stamping when; audited and on the timeline.
    `actor` is None when PagerDuty brought the step back (`by` says who there; `paged`: PagerDuty
    knows already, so the page is not told again)."""
    if actor is not None and not has_right(actor, Right.INCIDENT_MANAGE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_MANAGE))
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if not locked.may_become(status):
            raise IncidentRefused(
                f"{locked.number} is {locked.get_status_display().lower()}: it cannot be "
                f"{IncidentStatus(status).label.lower()} now."
            )
        before = locked.status
        locked.status = status
        setattr(locked, stamp, clock.now())
        if status == IncidentStatus.ACKNOWLEDGED and locked.commander_id is None and actor is not None:
            locked.commander = actor  # whoever acknowledges first runs it, until handed over
        locked.save(update_fields=["status", stamp, "commander"])
        audit_record(
            actor=actor,
            action=f"incident.{status}",
            target=locked,
            before={"status": before},
            after={"status": status, **({"note": note} if note else {}), **({"by": by} if by else {})},
        )
        who = actor.display_name if actor is not None else by
        words = f"{IncidentStatus(status).label} by {who}" + (f": {note}" if note else ".")
        timeline_add(
            locked, TimelineEntry.Kind.STATUS, words, actor=actor, public=True, status=status, note=note
        )
        if status in PAGE_ACTIONS and not paged:
            page(locked, PAGE_ACTIONS[status])
        if status == IncidentStatus.RESOLVED:
            notification_send(
                channel="slack", recipient=INCIDENT_CHANNEL, subject=f"{locked.number} resolved", body=words
            )
            _postmortem_required(locked)
        return locked


def _postmortem_required(incident: Incident) -> PostMortem | None:
    """A resolved P0 or P1, or an incident that needed a rollback, owes a post-mortem within 48
    hours: made now with its timeline filled in from the incident's (in the caller's transaction)."""
    from incidents.defaults import POSTMORTEM_DUE, POSTMORTEM_SEVERITIES

    rolled_back = (
        incident.deployment_id is not None
        or incident.timeline.filter(kind=TimelineEntry.Kind.ROLLBACK).exists()
    )
    if incident.severity not in POSTMORTEM_SEVERITIES and not rolled_back:
        return None
    lines = [f"{e.at:%Y-%m-%d %H:%M} UTC  {e.text}" for e in incident.timeline.all()]
    postmortem, _ = PostMortem.objects.get_or_create(
        incident=incident,
        defaults={"due_at": incident.resolved_at + POSTMORTEM_DUE, "timeline": "\n".join(lines),
                  "summary": incident.summary},
    )  # fmt: skip
    due = f"{postmortem.due_at:%Y-%m-%d %H:%M} UTC"
    timeline_add(
        incident, TimelineEntry.Kind.LINK, f"A post-mortem is due by {due}.", postmortem=postmortem.pk
    )
    return postmortem


# What each step tells PagerDuty (mitigated is ours alone: the page stays open until resolved).
PAGE_ACTIONS = {IncidentStatus.ACKNOWLEDGED: "acknowledge", IncidentStatus.RESOLVED: "resolve"}


def incident_acknowledge(*, actor, incident: Incident, note: str = "", **outside) -> Incident:
    return _moved(actor, incident, IncidentStatus.ACKNOWLEDGED, stamp="acknowledged_at", note=note, **outside)


def incident_mitigate(*, actor, incident: Incident, note: str = "") -> Incident:
    return _moved(actor, incident, IncidentStatus.MITIGATED, stamp="mitigated_at", note=note)


def incident_resolve(*, actor, incident: Incident, note: str = "", **outside) -> Incident:
    return _moved(actor, incident, IncidentStatus.RESOLVED, stamp="resolved_at", note=note, **outside)


@transaction.atomic
def incident_note(*, actor, incident: Incident, text: str) -> TimelineEntry:
    """A person's note on the timeline (anyone who may declare incidents may add one)."""
    if not has_right(actor, Right.INCIDENT_DECLARE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_DECLARE))
    if not text.strip():
        raise ValidationError("text: write the note.")
    entry = timeline_add(incident, TimelineEntry.Kind.NOTE, text.strip(), actor=actor)
    audit_record(actor=actor, action="incident.note", target=incident, after={"text": entry.text})
    return entry


def incidents_escalate() -> list[str]:
    """Beat runs this every 30 s: each triggered incident past its response target (again, each
    target after) escalates once per target: the breach is recorded, the page sent again, and the
    next level of the escalation list told; the numbers of those escalated are returned."""
    from django.conf import settings

    now = clock.now()
    escalated = []
    for incident in Incident.objects.filter(status=IncidentStatus.TRIGGERED).order_by("pk"):
        due = incident.created_at + incident.response_target * (incident.escalation_level + 1)
        if due <= now:
            escalated.append(_escalate(incident.pk, now, settings.INCIDENT_ESCALATION))
    return [number for number in escalated if number]


@transaction.atomic
def _escalate(pk: int, now, levels: list[str]) -> str:
    incident = Incident.objects.select_for_update().get(pk=pk)
    due = incident.created_at + incident.response_target * (incident.escalation_level + 1)
    if incident.status != IncidentStatus.TRIGGERED or due > now:  # acknowledged, or done meanwhile
        return ""
    incident.escalation_level += 1
    incident.response_breached_at = (
        incident.response_breached_at or incident.created_at + incident.response_target
    )
    incident.save(update_fields=["escalation_level", "response_breached_at"])
    target = int(incident.response_target.total_seconds() // 60)
    told = levels[min(incident.escalation_level, len(levels)) - 1] if levels else ""
    words = (
        f"Not acknowledged within {target} min ({incident.severity}): escalated to level "
        f"{incident.escalation_level + 1}" + (f", {told} told." if told else ".")
    )
    audit_record(
        actor=None,
        action="incident.escalate",
        target=incident,
        after={
            "level": incident.escalation_level,
            "told": told,
            "breached_at": incident.response_breached_at,
        },
    )
    timeline_add(incident, TimelineEntry.Kind.ESCALATION, words, level=incident.escalation_level, told=told)
    page(incident, "trigger")
    if told:
        channel = "slack" if told.startswith("#") else "email"
        subject = f"{incident.number} {incident.severity} not acknowledged"
        notification_send(channel=channel, recipient=told, subject=subject, body=f"{incident.title}. {words}")
    return incident.number


def incident_for_rollback(deployment) -> Incident:
    """The P1 a deployment that rolled back by itself opens (in the engine's transaction), linked to
    it, its change and the change's services."""
    change = deployment.change
    first_traffic = deployment.stages.filter(kind="traffic").order_by("started_at").first()
    return incident_declare(
        actor=None,
        title=f"{change.number} rolled back by itself in {deployment.environment}",
        severity=Severity.P1,
        summary=deployment.rollback_reason or deployment.error,
        services=list(change.services.all()),
        source=Incident.Source.DEPLOYMENT,
        deployment=deployment,
        change=change,
        started_at=first_traffic.started_at if first_traffic else None,
    )
