"""Incidents: declared by a person or by a deployment that rolled back by itself (a P1 linked to
it), moved on through guarded transitions, every step on the timeline and in the audit trail."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from deployments import services as deployments
from incidents import services
from incidents.models import Incident, TimelineEntry
from portal import clock
from portal.models import AuditEvent, Notification
from tests.changes.conftest import repo  # noqa: F401 (a fixture)
from tests.deployments.conftest import (  # noqa: F401 (fixtures)
    alb,
    cloudwatch_percentiles,
    colours,
    judged_by,
    production,
    ready,
    rita,
)
from tests.deployments.test_engine import run
from tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db


def kinds(incident) -> list[str]:
    return list(incident.timeline.values_list("kind", flat=True))


def test_a_person_declares_an_incident_on_its_services(sre, developer):
    web = ServiceFactory(name="web")
    started = clock.now() - timedelta(minutes=3)
    incident = services.incident_declare(
        actor=sre,
        title=" Checkout fails ",
        severity="P1",
        services=[web],
        public=True,
        public_title="Checkout is unavailable",
        started_at=started,
    )
    assert incident.number == f"INC-{incident.pk:06d}" and incident.title == "Checkout fails"
    assert (incident.status, incident.started_at, incident.declared_by) == ("triggered", started, sre)
    assert list(incident.services.all()) == [web] and incident.public
    assert incident.dedup_key == f"greenlight-inc-{incident.pk:06d}"
    entry, paged = incident.timeline.all()
    assert entry.kind == "declared" and entry.actor == sre and "P1 declared: Checkout fails" in entry.text
    assert (paged.kind, paged.text, paged.data["action"]) == ("page", "Paged on PagerDuty.", "trigger")
    event = AuditEvent.objects.get(action="incident.declare")
    assert event.actor_id == sre.pk and event.after["services"] == ["web"]
    with pytest.raises(
        PermissionDenied, match="an SRE publishes it"
    ):  # the public page is for SREs to speak on
        services.incident_declare(actor=developer, title="Checkout fails", severity="P1", public=True)


@pytest.mark.parametrize(
    "fields, says",
    [
        ({"title": " ", "severity": "P1"}, "say what is broken"),
        ({"title": "Down", "severity": "P5"}, "one of P0, P1, P2, P3"),
        ({"title": "Down", "severity": "P1", "started_at": "future"}, "cannot begin in the future"),
    ],
)
def test_a_malformed_declaration_is_refused_and_writes_nothing(developer, fields, says):
    if fields.get("started_at") == "future":
        fields["started_at"] = clock.now() + timedelta(minutes=5)
    with pytest.raises(ValidationError, match=says):
        services.incident_declare(actor=developer, **fields)
    assert not Incident.objects.exists() and not TimelineEntry.objects.exists()


def test_an_incident_moves_on_in_order_and_never_back(sre, developer):
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P0")
    with pytest.raises(PermissionDenied):
        services.incident_acknowledge(actor=developer, incident=incident)  # runs incidents: SREs

    incident = services.incident_acknowledge(actor=sre, incident=incident)
    assert incident.status == "acknowledged" and incident.acknowledged_at and incident.commander == sre
    incident = services.incident_mitigate(actor=sre, incident=incident, note="Traffic back on blue")
    incident = services.incident_resolve(actor=sre, incident=incident, note="Fixed in v1.3.1")
    assert incident.status == "resolved" and incident.mitigated_at <= incident.resolved_at
    assert kinds(incident) == ["declared", "page", "status", "page", "status", "status", "page", "link"]
    assert (
        incident.timeline.filter(kind="status").last().text
        == f"Resolved by {sre.display_name}: Fixed in v1.3.1"
    )

    with pytest.raises(services.IncidentRefused, match="is resolved: it cannot be acknowledged now"):
        services.incident_acknowledge(actor=sre, incident=incident)
    with pytest.raises(services.IncidentRefused, match="is resolved: it cannot be resolved now"):
        services.incident_resolve(actor=sre, incident=incident)
    actions = list(
        AuditEvent.objects.filter(object_id=str(incident.pk)).order_by("pk").values_list("action", flat=True)
    )
    assert actions == ["incident.declare", "incident.acknowledged", "incident.mitigated", "incident.resolved"]


def test_a_triggered_incident_may_be_resolved_at_once(sre):
    incident = services.incident_declare(actor=sre, title="False alarm", severity="P3")
    incident = services.incident_resolve(actor=sre, incident=incident, note="A probe's mistake")
    assert incident.status == "resolved" and incident.acknowledged_at is None


def test_people_add_notes_to_the_timeline(developer, auditor):
    incident = services.incident_declare(actor=developer, title="Slow pages", severity="P2")
    services.incident_note(actor=developer, incident=incident, text="Started after the 14:00 deploy.")
    with pytest.raises(ValidationError, match="write the note"):
        services.incident_note(actor=developer, incident=incident, text="  ")
    with pytest.raises(PermissionDenied):
        services.incident_note(actor=auditor, incident=incident, text="I only read.")
    assert kinds(incident) == ["declared", "page", "note"]
    assert AuditEvent.objects.filter(action="incident.note", object_id=str(incident.pk)).count() == 1


def test_a_deployment_that_rolled_back_by_itself_opens_one_p1_linked_to_it(alb, ready, rita):  # noqa: F811
    ready.services.set([ServiceFactory(name="web")])
    deployment = deployments.deploy(actor=rita, change=ready)
    deployment = run(deployment, until=lambda d: d.applied_weight == 25, alb=alb)
    deployment = run(deployment, alb=alb, errors=50)
    assert deployment.state == "rolled_back"

    (incident,) = Incident.objects.all()
    assert (incident.severity, incident.source, incident.status) == ("P1", "deployment", "triggered")
    assert (incident.deployment, incident.change, incident.declared_by) == (deployment, ready, None)
    assert [s.name for s in incident.services.all()] == ["web"]
    assert incident.title == f"{ready.number} rolled back by itself in {ready.environment}"
    assert "5xx error rate" in incident.summary
    assert kinds(incident) == ["declared", "link", "page"]
    assert f"{incident.number} is open." in deployment.error
    pages = Notification.objects.filter(channel="pagerduty")
    assert [(p.recipient, json.loads(p.body)["event_action"]) for p in pages] == [
        (incident.dedup_key, "trigger")
    ]
    assert Notification.objects.filter(channel="slack", recipient="#incidents").count() == 1


def test_a_rollback_a_person_asks_for_opens_no_incident(alb, ready, rita):  # noqa: F811
    deployment = deployments.deploy(actor=rita, change=ready)
    deployment = run(deployment, until=lambda d: d.applied_weight == 25, alb=alb)
    deployments.deployment_rollback(actor=rita, deployment=deployment, reason="Not today")
    deployment = run(deployment, alb=alb)
    assert deployment.state == "rolled_back" and not Incident.objects.exists()


def test_a_page_reaches_pagerduty_with_one_dedup_key_for_its_life(sre, settings, pagerduty):
    from portal.tasks import notification_deliver

    settings.NOTIFY_PAGERDUTY_ENABLED, settings.PAGERDUTY_ROUTING_KEY = True, "R0UT1NGKEY"
    settings.PAGERDUTY_EVENTS_URL = pagerduty.url
    incident = services.incident_declare(actor=sre, title="Checkout fails", severity="P0")
    services.incident_acknowledge(actor=sre, incident=incident)
    services.incident_resolve(actor=sre, incident=incident)
    for notification in Notification.objects.filter(channel="pagerduty").order_by("pk"):
        notification_deliver(notification.pk)
    assert [e["event_action"] for e in pagerduty.events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in pagerduty.events} == {incident.dedup_key}
    assert {e["routing_key"] for e in pagerduty.events} == {"R0UT1NGKEY"}
    trigger = pagerduty.events[0]["payload"]
    assert trigger == {
        "summary": f"{incident.number} P0: Checkout fails",
        "severity": "critical",
        "source": "greenlight",
    }


def test_pagerduty_down_keeps_the_incident_and_the_page_is_tried_again(developer, settings, pagerduty):
    from celery.exceptions import Retry

    from portal.tasks import notification_deliver

    settings.NOTIFY_PAGERDUTY_ENABLED, settings.PAGERDUTY_ROUTING_KEY = True, "R0UT1NGKEY"
    settings.PAGERDUTY_EVENTS_URL = pagerduty.url
    pagerduty.status = 503
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    page = Notification.objects.get(channel="pagerduty")
    with pytest.raises(Retry):
        notification_deliver.apply(args=[page.pk], throw=True)
    page.refresh_from_db()
    assert page.status == "pending" and page.attempts == 1 and "503" in page.last_error
    assert Incident.objects.filter(pk=incident.pk).exists()
    pagerduty.status = 202
    notification_deliver(page.pk)
    page.refresh_from_db()
    assert page.status == "sent" and [e["event_action"] for e in pagerduty.events] == ["trigger"]


def test_an_unacknowledged_p0_escalates_after_its_target_and_each_target_after(developer, sre, settings):
    from incidents.tasks import incidents_escalate

    settings.INCIDENT_ESCALATION = ["#production-alerts", "head-of-eng@example.com"]
    incident = services.incident_declare(actor=developer, title="Everything is down", severity="P0")
    clock.shift(timedelta(minutes=4, seconds=59))
    assert incidents_escalate() == []  # within its 5 minutes

    clock.shift(timedelta(seconds=2))
    assert incidents_escalate() == [incident.number]
    assert incidents_escalate() == []  # once per target
    incident.refresh_from_db()
    assert incident.escalation_level == 1
    assert incident.response_breached_at == incident.created_at + timedelta(minutes=5)
    escalation = incident.timeline.get(kind="escalation")
    assert escalation.text == (
        "Not acknowledged within 5 min (P0): escalated to level 2, #production-alerts told."
    )
    pages = Notification.objects.filter(channel="pagerduty", recipient=incident.dedup_key)
    assert pages.count() == 2  # paged again
    assert Notification.objects.filter(channel="slack", recipient="#production-alerts").exists()

    clock.shift(timedelta(minutes=5))
    assert incidents_escalate() == [incident.number]
    assert Notification.objects.filter(channel="email", recipient="head-of-eng@example.com").exists()
    services.incident_acknowledge(actor=sre, incident=incident)
    clock.shift(timedelta(minutes=30))
    assert incidents_escalate() == []  # acknowledged: the timer stops
    incident.refresh_from_db()
    assert incident.escalation_level == 2 and incident.response_breached_at is not None
    assert AuditEvent.objects.filter(action="incident.escalate", object_id=str(incident.pk)).count() == 2


def test_an_incident_acknowledged_in_time_never_escalates(developer, sre):
    from incidents.tasks import incidents_escalate

    incident = services.incident_declare(actor=developer, title="Slow search", severity="P1")
    clock.shift(timedelta(minutes=14))
    services.incident_acknowledge(actor=sre, incident=incident)
    clock.shift(timedelta(hours=3))
    assert incidents_escalate() == []
    incident.refresh_from_db()
    assert incident.response_breached_at is None and incident.escalation_level == 0


def test_a_deployment_stopped_before_any_traffic_moved_pages_nobody(alb, ready, rita, colours):  # noqa: F811
    colours["green"].status = 503  # its smoke tests fail at 0 %
    deployment = run(deployments.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == "rolled_back" and "Smoke tests failed" in deployment.error
    assert not Incident.objects.exists()
    assert not Notification.objects.filter(channel="pagerduty").exists()


def test_a_resolved_p1_owes_a_post_mortem_overdue_48_hours_after(sre, developer):
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    services.incident_acknowledge(actor=sre, incident=incident)
    incident = services.incident_resolve(actor=sre, incident=incident, note="Rolled back")
    postmortem = incident.postmortem
    assert postmortem.due_at == incident.resolved_at + timedelta(hours=48)
    assert "P1 declared: Checkout fails" in postmortem.timeline and "Resolved by" in postmortem.timeline
    assert incident.timeline.last().text.startswith("A post-mortem is due by ")
    clock.shift(timedelta(hours=47, minutes=59))
    assert not postmortem.overdue(clock.now())
    clock.shift(timedelta(minutes=2))
    assert postmortem.overdue(clock.now())


@pytest.mark.parametrize(
    "severity, deployment, owed",
    [("P3", None, False), ("P2", "linked", False), ("P2", "rolled back", True), ("P0", None, True)],
)
def test_a_post_mortem_is_owed_for_p0_p1_and_any_rollback(sre, severity, deployment, owed, alb, ready, rita):  # noqa: F811
    linked = deployments.deploy(actor=rita, change=ready) if deployment else None
    incident = services.incident_declare(actor=sre, title="Trouble", severity=severity, deployment=linked)
    if deployment == "rolled back":
        services.incident_rollback(actor=rita, incident=incident, reason="Errors since it started")
    incident = services.incident_resolve(actor=sre, incident=incident)
    assert hasattr(incident, "postmortem") is owed


def test_a_deployment_that_rolled_back_by_itself_owes_a_post_mortem_whatever_the_severity(sre):
    incident = services.incident_declare(
        actor=None, title="Rolled back", severity="P3", source=Incident.Source.DEPLOYMENT
    )
    incident = services.incident_resolve(actor=sre, incident=incident)
    assert hasattr(incident, "postmortem")


def test_a_p1_is_told_on_the_alert_channel_and_to_the_people_of_the_change_it_follows(developer, qa):
    from tests.factories import change_create

    change = change_create(developer, title="Faster checkout")
    change.stakeholders.set([qa])
    services.incident_declare(actor=developer, title="Checkout fails", severity="P1", change=change)
    services.incident_declare(actor=developer, title="A typo", severity="P3")
    told = Notification.objects.order_by("pk")
    slack = [(n.recipient, n.subject.split(" declared")[0][-2:]) for n in told.filter(channel="slack")]
    assert slack == [("#incidents", "P1"), ("#production-alerts", "P1"), ("#incidents", "P3")]
    emails = sorted(told.filter(channel="email").values_list("recipient", flat=True))
    assert emails == sorted([developer.email, qa.email])
