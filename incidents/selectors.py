"""Reads of incidents for the report and the overview, scoped to who may see them, each in a fixed
number of queries however many incidents there are."""

from datetime import datetime, timedelta

from django.db.models import QuerySet

from incidents.measures import MEASURED_FIELDS, Report, measures_report
from incidents.models import Incident, IncidentStatus, PostMortem
from portal.roles import Right, has_right

# How many rows each block of the overview lists; the incident list has the rest.
OVERVIEW_ROWS = 20


def incidents_visible_to(user) -> QuerySet[Incident]:
    if not has_right(user, Right.INCIDENT_VIEW):
        return Incident.objects.none()
    return Incident.objects.all()


def incident_report(user, *, days: int, now: datetime) -> Report:
    """TTD, TTA and TTR per severity of the incidents detected in the last `days` days, in one
    query (the figures are worked out here, the same way on PostgreSQL and SQLite)."""
    since = now - timedelta(days=days)
    incidents = (
        incidents_visible_to(user)
        .filter(detected_at__gte=since, detected_at__lte=now)
        .only("id", *MEASURED_FIELDS)
        .order_by()
    )
    return measures_report(list(incidents), days=days, since=since, until=now)


def incidents_overview(user, *, now: datetime) -> dict | None:
    """The overview's incidents: the open ones, most severe and oldest first, each with its age,
    and those whose post-mortem is overdue, longest overdue first; two queries. None for someone
    who may not view incidents."""
    if not has_right(user, Right.INCIDENT_VIEW):
        return None
    open_incidents = list(
        Incident.objects.exclude(status=IncidentStatus.RESOLVED)
        .only("id", "title", "severity", "status", "detected_at")
        .order_by("severity", "detected_at", "id")[: OVERVIEW_ROWS + 1]
    )
    for incident in open_incidents:
        incident.age = now - incident.detected_at
    overdue = list(
        PostMortem.objects.filter(completed_at__isnull=True, due_at__lt=now)
        .select_related("incident")
        .only("id", "due_at", "completed_at", "incident", "incident__title", "incident__severity")
        .order_by("due_at", "id")[: OVERVIEW_ROWS + 1]
    )
    for postmortem in overdue:
        postmortem.late = now - postmortem.due_at
    return {
        "open": open_incidents[:OVERVIEW_ROWS],
        "open_more": len(open_incidents) > OVERVIEW_ROWS,
        "postmortems_overdue": overdue[:OVERVIEW_ROWS],
        "postmortems_overdue_more": len(overdue) > OVERVIEW_ROWS,
    }


def postmortem_of(incident_id: int) -> PostMortem:
    """The incident's post-mortem with its author and action items (404 while it owes none)."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(
        PostMortem.objects.select_related("incident", "author").prefetch_related("action_items__owner"),
        incident_id=incident_id,
    )
