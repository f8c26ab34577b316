"""Escalation: an incident nobody acknowledged in time is told to the next level of the policy."""

from datetime import datetime

from django.db import transaction

from incidents.models import Incident, IncidentStatus, TimelineEntry
from incidents.services.base import page, timeline_add
from portal import clock
from portal.services import audit_record, notification_send


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
def _escalate(pk: int, now: datetime, levels: list[str]) -> str:
    incident = Incident.objects.select_for_update(no_key=True).get(pk=pk)
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
