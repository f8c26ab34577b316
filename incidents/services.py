"""Every write to an incident: audited in its transaction."""

from django.core.exceptions import ValidationError
from django.db import transaction

from incidents.models import Incident, Severity
from portal import clock
from portal.roles import Right, has_right, missing_right_message
from portal.services import audit_record


@transaction.atomic
def incident_declare(*, actor, title: str, severity: str) -> Incident:
    if actor is not None and not has_right(actor, Right.INCIDENT_DECLARE):
        raise ValidationError(missing_right_message(Right.INCIDENT_DECLARE))
    if not title.strip():
        raise ValidationError("title: say what is broken.")
    if severity not in Severity.values:
        raise ValidationError(f"severity: one of {', '.join(Severity.values)}.")
    incident = Incident.objects.create(
        title=title.strip(), severity=severity, declared_by=actor, created_at=clock.now()
    )
    audit_record(
        actor=actor,
        action="incident.declare",
        target=incident,
        after={"title": incident.title, "severity": severity},
    )
    return incident
