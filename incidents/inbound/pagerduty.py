"""PagerDuty's V3 webhooks: an acknowledgement or resolution made on PagerDuty comes back to the
incident whose dedup key it carries (PagerDuty knows already: nothing is paged back). Believed by
the HMAC of the shared secret; each event acted on once, by its id."""

import json
import re
from typing import Any

from django.conf import settings
from django.db import transaction

from incidents import services
from incidents.inbound.common import Outcome, Refused, refuse_nul
from incidents.models import Incident, IncidentStatus
from integrations.signatures import signed_with
from portal.models import InboundDelivery
from portal.services import audit_record, inbound_once

# What each PagerDuty event brings back, and the service that does it.
PAGERDUTY_ACTS = {
    "incident.acknowledged": (IncidentStatus.ACKNOWLEDGED, services.incident_acknowledge),
    "incident.resolved": (IncidentStatus.RESOLVED, services.incident_resolve),
}
DEDUP_KEY = re.compile(r"greenlight-inc-([0-9]{6,12})")


def pagerduty_receive(*, body: bytes, signatures: str) -> Outcome:
    """Verifies one V3 webhook and brings an acknowledgement or resolution made on PagerDuty back
    to the incident whose dedup key it carries (PagerDuty knows already: nothing is paged back)."""
    secret = settings.PAGERDUTY_WEBHOOK_SECRET
    if not secret:
        raise Refused(503, "Set PAGERDUTY_WEBHOOK_SECRET to take PagerDuty's webhooks.", "not_configured")
    if not signed_with(secret=secret, body=body, given=signatures.split(","), prefix="v1="):
        raise Refused(
            401, "The signature does not match the webhook's secret: the event is ignored.", "bad_signature"
        )
    event = _pagerduty_event(body)
    if event["event_type"] not in PAGERDUTY_ACTS:
        return Outcome(202, f"{event['event_type']} ignored.")
    status, act = PAGERDUTY_ACTS[event["event_type"]]
    agent = event["agent"] if isinstance(event.get("agent"), dict) else {}
    who = agent.get("summary") if isinstance(agent.get("summary"), str) and agent["summary"] else "someone"
    incident_key = event["data"].get("incident_key")
    with transaction.atomic():
        incident = _incident_for_key(incident_key)
        if incident is None:
            return Outcome(202, f"No incident here has the key {incident_key!r}: ignored.")
        received = inbound_once(
            source=InboundDelivery.Source.PAGERDUTY, delivery_id=event["id"], kind=event["event_type"]
        )
        if received is None:
            return Outcome(200, "Event already received.")
        if incident.can_transition_to(status):
            incident = act(actor=None, incident=incident, by=f"{who} on PagerDuty", paged=True)
            done = f"{incident.number} {incident.get_status_display().lower()} by {who} on PagerDuty."
        else:
            done = f"{incident.number} is {incident.get_status_display().lower()} already: nothing to do."
        received.acted_on(incident)
        audit_record(
            actor=None,
            action="pagerduty.event",
            target=incident,
            after={"event": event["event_type"], "event_id": event["id"], "by": who, "done": done},
        )
    return Outcome(200, done)


def _pagerduty_event(body: bytes) -> dict[str, Any]:
    """The webhook's `event`: an id, a type, and for an incident's events the incident as `data`."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "The body is not JSON: PagerDuty posts a JSON event.", "invalid") from None
    event = payload.get("event") if isinstance(payload, dict) else None
    if not isinstance(event, dict):
        raise Refused(400, "This is not a PagerDuty V3 webhook: it has no event object.", "invalid")
    for field in ("id", "event_type"):
        if not isinstance(event.get(field), str) or not event[field] or len(event[field]) > 200:
            raise Refused(400, f"This is not a PagerDuty V3 webhook: event.{field} is missing.", "invalid")
    agent = event.get("agent")
    refuse_nul(
        what="The PagerDuty event",
        texts={
            "event.id": event["id"],
            "event.event_type": event["event_type"],
            "event.agent.summary": agent.get("summary") if isinstance(agent, dict) else None,
        },
    )
    if event["event_type"] in PAGERDUTY_ACTS and not isinstance(event.get("data"), dict):
        raise Refused(400, f"A {event['event_type']} event carries its incident as event.data.", "invalid")
    return event


def _incident_for_key(key: object) -> Incident | None:
    """The incident whose PagerDuty dedup key (`greenlight-inc-000042`) this is, if any, locked."""
    match = DEDUP_KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        return None
    incident = Incident.objects.select_for_update(no_key=True).filter(pk=int(match.group(1))).first()
    return incident if incident is not None and incident.dedup_key == key else None
