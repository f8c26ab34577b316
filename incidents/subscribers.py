"""What incidents do when the layers below act (portal.hooks; connected in config.wiring): a change
filed to fix an incident, or to fix forward a rolled-back change, goes on the incidents' timelines;
a deployment that rolled back by itself opens a P1; an emergency change opens its lane only for an
incident that warrants it."""

from django.db.models import Q

from catalogue.defaults import SEVERITIES
from catalogue.models import Environment
from changes.models import ChangeRequest
from changes.services import ChangeError
from deployments.models import Deployment
from incidents.models import Incident, IncidentStatus, TimelineEntry
from incidents.services import incident_for_rollback, timeline_add
from portal.models import User


def change_fixes_forward(*, change: ChangeRequest, actor: User | None) -> None:
    """The incidents of the rolled-back change hear of the change that fixes it forward."""
    named = change.fixes_forward
    for incident in Incident.objects.filter(Q(change=named) | Q(deployment__change=named)).distinct():
        text = f"{change.number} filed to fix {named.number} forward: {change.title}."
        timeline_add(incident, TimelineEntry.Kind.LINK, text, actor=actor, change=change.pk)


def change_filed(*, change: ChangeRequest, actor: User | None) -> None:
    """The incident an emergency change fixes hears of it."""
    if change.incident_id is not None:
        kind = change.get_change_type_display()
        text = f"{kind} change {change.number} filed to fix it: {change.title}."
        timeline_add(change.incident, TimelineEntry.Kind.LINK, text, actor=actor, change=change.pk)


def deployment_rolled_back(*, deployment: Deployment) -> str:
    return f"{incident_for_rollback(deployment).number} is open."


def emergency_grounds(*, incident: Incident, requester: User, environment: Environment) -> None:
    """The emergency lane (fewer approvals up front, no slot, through freezes) opens only for an
    open incident at or above the policy's severity that the requester did not declare alone:
    an alarm or a deployment declared it, someone else did, or someone else is on it."""
    floor = environment.approval_policy.emergency_min_severity
    if incident.status == IncidentStatus.RESOLVED:
        raise ChangeError(
            f"incident: {incident.number} is resolved; an emergency change fixes an open incident."
        )
    if SEVERITIES.index(incident.severity) > SEVERITIES.index(floor):
        raise ChangeError(
            f"incident: {incident.number} is a {incident.severity}; the emergency lane opens for a "
            f"{floor} or worse. File a normal change."
        )
    others = incident.source != Incident.Source.PERSON or incident.declared_by_id != requester.pk
    others = (
        others
        or incident.commander_id not in (None, requester.pk)
        or incident.responders.exclude(pk=requester.pk).exists()
    )
    if not others:
        raise ChangeError(
            f"incident: you declared {incident.number} and nobody else is on it yet; the emergency lane "
            "opens once another responder confirms it (acknowledges, takes command or joins)."
        )
