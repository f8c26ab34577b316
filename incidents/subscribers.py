"""What incidents do when the layers below act (portal.hooks; connected in config.wiring): a change
filed to fix an incident, or to fix forward a rolled-back change, goes on the incidents' timelines;
a deployment that rolled back by itself opens a P1."""

from django.db.models import Q

from changes.models import ChangeRequest
from deployments.models import Deployment
from incidents.models import Incident, TimelineEntry
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
