"""What every act on an incident shares: the refusal, the timeline, and the page on PagerDuty."""

import json
from typing import Any

from django.db import transaction

from incidents.models import Incident, Severity, TimelineEntry
from portal import clock
from portal.errors import Refusal
from portal.models import User
from portal.services import notification_send

# Where incidents are told on Slack, besides PagerDuty's page.
INCIDENT_CHANNEL = "#incidents"
# PagerDuty's severity for each of ours.
PAGE_SEVERITY: dict[str, str] = {
    Severity.P0: "critical",
    Severity.P1: "error",
    Severity.P2: "warning",
    Severity.P3: "info",
}


class IncidentRefused(Refusal):
    """The act clashes with the incident's state (a 409), in words."""

    conflict = True


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
    incident: Incident,
    kind: str,
    text: str,
    *,
    actor: User | None = None,
    public: bool = False,
    **data: Any,
) -> TimelineEntry:
    """One entry on the incident's timeline (in the caller's transaction); a `public` one is an
    update the status page shows, when the incident itself is public, and its subscribers are
    e-mailed it once the caller's transaction commits."""
    entry = TimelineEntry.objects.create(
        incident=incident,
        at=clock.now(),
        kind=kind,
        actor=actor,
        text=text,
        data=data,
        public=public and incident.public,
    )
    if entry.public:
        transaction.on_commit(lambda: _public_update_told(entry.pk))
    return entry


def _public_update_told(entry_id: int) -> None:
    """Once a public update commits: the status page's kept copy is stale from now on (the next
    request shows the update, whether or not a worker took the e-mails yet), and the subscribers
    are e-mailed by a task."""
    from incidents import status
    from incidents.tasks import status_update_send

    status.status_page_forget()
    status_update_send.delay(entry_id)
