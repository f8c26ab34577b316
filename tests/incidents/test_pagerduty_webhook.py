"""PagerDuty's V3 webhooks: an incident acknowledged or resolved on a phone is acknowledged or
resolved here, once, without paging PagerDuty back; only events signed with the secret count."""

import hashlib
import hmac
import json
import uuid
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from incidents import services
from incidents.models import Incident, TimelineEntry
from portal.models import AuditEvent, InboundDelivery, Notification

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks/pagerduty/"
SECRET = "pagerduty-webhook-secret-for-tests"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.PAGERDUTY_WEBHOOK_SECRET = SECRET


@pytest.fixture
def incident(developer):
    return services.incident_declare(actor=developer, title="Checkout fails", severity="P1")


def signed(body: bytes, secret: str = SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event(event_type: str, incident_key: str, *, agent: str = "Ada Lovelace") -> dict:
    """A V3 webhook as PagerDuty documents it: one event, its agent, the incident as its data."""
    return {
        "event": {
            "id": str(uuid.uuid4()),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2024-05-02T09:15:22.169Z",
            "agent": {
                "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
                "id": "PLH1HKV",
                "self": "https://api.pagerduty.com/users/PLH1HKV",
                "summary": agent,
                "type": "user_reference",
            },
            "client": {"name": "PagerDuty"},
            "data": {
                "id": "PGR0VU2",
                "type": "incident",
                "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
                "number": 2,
                "status": event_type.removeprefix("incident."),
                "incident_key": incident_key,
                "created_at": "2024-05-02T09:01:27Z",
                "title": "INC-000001 P1: Checkout fails",
                "urgency": "high",
                "resolve_reason": None,
            },
        }
    }


def deliver(payload, *, signature: str | None = None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return APIClient().post(
        URL,
        body,
        content_type="application/json",
        HTTP_X_PAGERDUTY_SIGNATURE=signed(body) if signature is None else signature,
    )


def page_actions(incident) -> list[str]:
    pages = Notification.objects.filter(channel="pagerduty", recipient=incident.dedup_key).order_by("pk")
    return [json.loads(page.body)["event_action"] for page in pages]


def test_an_acknowledgement_on_pagerduty_acknowledges_the_incident_and_pages_nothing_back(
    incident, settings, pagerduty
):
    from portal.tasks import notification_deliver

    response = deliver(event("incident.acknowledged", incident.dedup_key))
    assert response.status_code == 200, response.json()
    assert response.json()["detail"] == f"{incident.number} acknowledged by Ada Lovelace on PagerDuty."
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.acknowledged_at is not None
    assert incident.commander is None  # nobody here acknowledged it
    entry = incident.timeline.filter(kind=TimelineEntry.Kind.STATUS).get()
    assert entry.text == "Acknowledged by Ada Lovelace on PagerDuty." and entry.actor is None
    assert page_actions(incident) == ["trigger"]

    settings.NOTIFY_PAGERDUTY_ENABLED, settings.PAGERDUTY_ROUTING_KEY = True, "R0UT1NGKEY"
    settings.PAGERDUTY_EVENTS_URL = pagerduty.url
    for notification in Notification.objects.filter(channel="pagerduty"):
        notification_deliver(notification.pk)
    assert [e["event_action"] for e in pagerduty.events] == ["trigger"]

    audit = AuditEvent.objects.get(action="incident.acknowledged")
    assert audit.actor_id is None and audit.after["by"] == "Ada Lovelace on PagerDuty"
    received = InboundDelivery.objects.get()
    assert (received.source, received.kind, received.object_type, received.object_id) == (
        "pagerduty",
        "incident.acknowledged",
        "incidents.incident",
        str(incident.pk),
    )
    assert AuditEvent.objects.filter(action="pagerduty.event", object_id=str(incident.pk)).count() == 1


def test_a_resolution_on_pagerduty_resolves_the_incident_and_its_post_mortem_is_owed(incident):
    response = deliver(event("incident.resolved", incident.dedup_key, agent="Grace Hopper"))
    assert response.status_code == 200
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at is not None
    assert incident.timeline.filter(text="Resolved by Grace Hopper on PagerDuty.").exists()
    assert incident.postmortem.due_at == incident.resolved_at + timedelta(hours=48)  # a P1 owes one
    assert page_actions(incident) == ["trigger"]
    assert Notification.objects.filter(channel="slack", subject=f"{incident.number} resolved").exists()


@pytest.mark.parametrize(
    "signature",
    ["", "v1=" + "0" * 64, "v0=abc", signed(b"another body"), "v1=é"],
    ids=["missing", "zeros", "other-version", "other-body", "not-ascii"],
)
def test_a_wrong_signature_is_a_401_and_changes_nothing(incident, signature):
    response = deliver(event("incident.acknowledged", incident.dedup_key), signature=signature)
    assert response.status_code == 401 and "does not match" in response.json()["detail"]
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert not InboundDelivery.objects.exists()
    assert not AuditEvent.objects.exclude(action="incident.declare").exists()


def test_a_signature_made_with_another_secret_is_refused_and_one_of_several_is_enough(incident):
    payload = event("incident.acknowledged", incident.dedup_key)
    body = json.dumps(payload).encode()
    assert deliver(body, signature=signed(body, "an-old-secret")).status_code == 401
    rotating = f"{signed(body, 'an-old-secret')},{signed(body)}"  # PagerDuty signs with both while rotating
    assert deliver(body, signature=rotating).status_code == 200
    incident.refresh_from_db()
    assert incident.status == "acknowledged"


def test_the_same_event_delivered_again_is_ignored(incident):
    payload = event("incident.acknowledged", incident.dedup_key)
    assert deliver(payload).status_code == 200
    again = deliver(payload)
    assert again.status_code == 200 and again.json()["detail"] == "Event already received."
    assert incident.timeline.filter(kind=TimelineEntry.Kind.STATUS).count() == 1
    assert AuditEvent.objects.filter(action="incident.acknowledged").count() == 1
    assert InboundDelivery.objects.count() == 1


def test_an_acknowledgement_of_a_resolved_incident_changes_nothing(incident, sre):
    services.incident_resolve(actor=sre, incident=incident, note="Fixed")
    before = list(incident.timeline.values_list("pk", flat=True))
    audited = AuditEvent.objects.filter(action__startswith="incident.").count()

    response = deliver(event("incident.acknowledged", incident.dedup_key))
    assert response.status_code == 200
    assert response.json()["detail"] == f"{incident.number} is resolved already: nothing to do."
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.acknowledged_at is None
    assert list(incident.timeline.values_list("pk", flat=True)) == before
    assert AuditEvent.objects.filter(action__startswith="incident.").count() == audited


def test_an_acknowledgement_after_one_made_here_changes_nothing(incident, sre):
    services.incident_acknowledge(actor=sre, incident=incident)
    response = deliver(event("incident.acknowledged", incident.dedup_key))
    assert response.status_code == 200 and "acknowledged already" in response.json()["detail"]
    incident.refresh_from_db()
    assert incident.commander == sre
    assert incident.timeline.filter(kind=TimelineEntry.Kind.STATUS).count() == 1


@pytest.mark.parametrize(
    "payload, says",
    [
        (lambda key: event("incident.annotated", key), "incident.annotated ignored."),
        (lambda key: event("pagey.ping", key), "pagey.ping ignored."),
        (lambda key: event("incident.acknowledged", "d3640fbd41094207a1c11e58e46b1662"), "No incident here"),
        (lambda key: event("incident.acknowledged", "greenlight-inc-999999"), "No incident here"),
        (lambda key: event("incident.acknowledged", key.replace("-inc-", "-inc-0")), "No incident here"),
    ],
)
def test_other_events_and_unknown_incidents_are_a_202_and_change_nothing(incident, payload, says):
    response = deliver(payload(incident.dedup_key))
    assert response.status_code == 202 and says in response.json()["detail"]
    incident.refresh_from_db()
    assert incident.status == "triggered" and not InboundDelivery.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"event": {"event_type": "incident.resolved"}}).encode(),
        json.dumps({"event": {"id": "E1", "event_type": "incident.resolved", "data": None}}).encode(),
    ],
)
def test_a_signed_body_that_is_not_a_v3_webhook_is_a_400(incident, body):
    response = deliver(body)
    assert response.status_code == 400
    incident.refresh_from_db()
    assert incident.status == "triggered" and not InboundDelivery.objects.exists()


def _nul_in_id(key):
    payload = event("incident.acknowledged", key)
    payload["event"]["id"] += "\x00"
    return payload


@pytest.mark.parametrize(
    "payload, says",
    [
        (_nul_in_id, "The PagerDuty event has a NUL character in event.id"),
        (
            lambda key: event("incident.acknowledged", key, agent="Ada\x00Lovelace"),
            "The PagerDuty event has a NUL character in event.agent.summary",
        ),
    ],
    ids=["id", "agent"],
)
def test_an_event_with_a_nul_character_is_a_400_and_changes_nothing(incident, payload, says):
    response = deliver(payload(incident.dedup_key))
    assert response.status_code == 400 and says in response.json()["detail"]
    incident.refresh_from_db()
    assert incident.status == "triggered" and not InboundDelivery.objects.exists()
    assert not AuditEvent.objects.exclude(action="incident.declare").exists()
    assert incident.timeline.filter(kind=TimelineEntry.Kind.STATUS).count() == 0


def test_without_a_secret_the_webhook_is_not_configured(incident, settings):
    settings.PAGERDUTY_WEBHOOK_SECRET = None
    response = deliver(event("incident.acknowledged", incident.dedup_key))
    assert response.status_code == 503 and "PAGERDUTY_WEBHOOK_SECRET" in response.json()["detail"]
    incident.refresh_from_db()
    assert incident.status == "triggered"


def test_an_incident_resolved_on_pagerduty_is_known_by_its_dedup_key_only(incident, developer):
    other = services.incident_declare(actor=developer, title="Search is slow", severity="P3")
    deliver(event("incident.resolved", other.dedup_key))
    incident.refresh_from_db()
    other.refresh_from_db()
    assert (incident.status, other.status) == ("triggered", "resolved")
    assert Incident.objects.filter(status="resolved").count() == 1
