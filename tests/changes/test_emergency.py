"""Emergency changes: linked to an incident, approved up front by one release manager or SRE with
an OTP, free of windows and freezes (the freeze override recorded), and flagged until the full
policy's review is done, overdue after 48 hours."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import transaction

from changes import services
from portal import clock
from portal.models import AuditEvent
from tests.conftest import client_for
from tests.factories import (
    EnvironmentFactory,
    IncidentFactory,
    ServiceFactory,
    UserFactory,
    change_create,
    otp_code,
    totp_device,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(release_manager):
    """The default policy (3 approvals, a code owner, 3 sign-offs), a Tuesday window and a freeze."""
    environment = EnvironmentFactory(time_zone="Europe/Paris")
    services.window_create(
        actor=release_manager, environment=environment, weekdays=[1], start_time=time(2), end_time=time(5)
    )
    services.freeze_create(
        actor=release_manager,
        environment=environment,
        reason="Launch week",
        starts_at=datetime(2027, 3, 1, tzinfo=UTC),
        ends_at=datetime(2027, 3, 8, tzinfo=UTC),
    )
    return environment


@pytest.fixture
def emergency(developer, production):
    change = change_create(
        developer,
        title="Restore sign-in",
        change_type="emergency",
        environment=production,
        incident=IncidentFactory(),
        services=[ServiceFactory(code_owners=["alex-owner"])],
    )
    with transaction.atomic():
        services.change_submit(actor=developer, change=change)
    return change


def decide(person, change, decision: str = "approve", capacity: str = ""):
    body = {"decision": decision, "capacity": capacity, "comment": "", "otp": otp_code(totp_device(person))}
    return client_for(person).post(f"/api/v1/changes/{change.pk}/approvals/", body, format="json")


def detail(change, by) -> dict:
    return client_for(by).get(f"/api/v1/changes/{change.pk}/").json()


def test_an_emergency_change_without_an_incident_is_a_400_naming_it(developer, production):
    body = {
        "title": "Restore sign-in",
        "description": "Reverts the cookie change.",
        "rollback_plan": "Revert.",
        "change_type": "emergency",
        "environment": production.name,
    }
    response = client_for(developer).post("/api/v1/changes/", body, format="json")
    assert response.status_code == 400 and response.json()["detail"].startswith("incident: ")


def test_one_release_manager_with_an_otp_approves_it_and_the_full_review_is_owed(emergency, developer):
    approver = UserFactory(username="alex", role="developer")
    assert decide(approver, emergency).status_code == 201
    waiting = detail(emergency, developer)
    assert waiting["status"] == "submitted"
    assert waiting["quorum"]["explanation"].startswith(
        "0 of 1 approvals from a release manager or site reliability"
    )
    without_code = client_for(rm := UserFactory(username="rita", role="release_manager")).post(
        f"/api/v1/changes/{emergency.pk}/approvals/", {"decision": "approve"}, format="json"
    )
    assert without_code.status_code == 403
    assert decide(rm, emergency).status_code == 201
    approved = detail(emergency, developer)
    assert approved["status"] == "approved"
    due = datetime.fromisoformat(approved["emergency_review"]["due_at"])
    assert due == datetime.fromisoformat(approved["approved_at"]) + timedelta(hours=48)
    assert (
        approved["emergency_review"]["done_at"] is None and approved["emergency_review"]["overdue"] is False
    )
    assert AuditEvent.objects.filter(
        object_id=str(emergency.pk), action="change.emergency_review_owed"
    ).exists()


def test_it_is_scheduled_outside_the_windows_and_through_a_freeze_and_the_override_kept(emergency, developer):
    with transaction.atomic():
        services.change_decide(actor=UserFactory(role="sre"), change=emergency, decision="approve")
    # Wednesday 3 March 2027, 14:00 Paris: outside Tuesday's window, inside "Launch week".
    response = client_for(developer).post(
        f"/api/v1/changes/{emergency.pk}/schedule/",
        {"window_start": "2027-03-03T14:00", "window_end": "2027-03-03T15:00"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["freeze_override"] == "Launch week"
    event = AuditEvent.objects.get(object_id=str(emergency.pk), action="change.scheduled")
    assert event.after["freeze_override"] == "Launch week"


def test_a_normal_change_is_still_held_to_the_freeze(developer, production):
    change = change_create(developer, environment=production)
    change.status = "approved"
    change.save(update_fields=["status"])
    response = client_for(developer).post(
        f"/api/v1/changes/{change.pk}/schedule/",
        {"window_start": "2027-03-02T02:00", "window_end": "2027-03-02T03:00"},
        format="json",
    )
    assert response.status_code == 409 and "freeze (Launch week" in response.json()["detail"]


def test_it_is_flagged_until_the_full_review_is_done_and_overdue_after_48_hours(
    emergency, developer, auditor
):
    with transaction.atomic():
        services.change_decide(actor=UserFactory(role="sre"), change=emergency, decision="approve")
    clock.shift(timedelta(hours=49))
    flagged = detail(emergency, developer)["emergency_review"]
    assert flagged["overdue"] is True and flagged["done_at"] is None
    listed = client_for(auditor).get("/changes/").content.decode()
    assert "Full review overdue" in listed
    page = client_for(auditor).get(f"/changes/{emergency.pk}/").content.decode()
    assert (
        f"Emergency change for {emergency.incident.number}" in page and "the full review was due by" in page
    )
    assert "1 of 3 approvals; 0 of 1 code owner approvals; security sign-off missing" in page
    # The full policy, after the fact: three approvals with a code owner and the three sign-offs.
    reviewers = [
        (UserFactory(username="alex", github_login="alex-owner", capacities=["security"]), "security"),
        (UserFactory(username="pat", capacities=["product"]), "product"),
        (UserFactory(username="lee", capacities=["engineering_lead"]), "engineering_lead"),
    ]
    for person, capacity in reviewers[:2]:
        assert decide(person, emergency, capacity=capacity).status_code == 201
    assert detail(emergency, developer)["emergency_review"]["done_at"] is None
    last, capacity = reviewers[2]
    assert decide(last, emergency, capacity=capacity).status_code == 201
    done = detail(emergency, developer)["emergency_review"]
    assert done["done_at"] is not None and done["overdue"] is False
    event = AuditEvent.objects.get(object_id=str(emergency.pk), action="change.emergency_reviewed")
    assert event.after["overdue"] is True
    assert "Full review" not in client_for(auditor).get("/changes/").content.decode()
    assert "review-banner" not in client_for(auditor).get(f"/changes/{emergency.pk}/").content.decode()


def test_the_review_continues_after_the_change_has_deployed(emergency, developer):
    with transaction.atomic():
        services.change_decide(actor=UserFactory(role="sre"), change=emergency, decision="approve")
    emergency.refresh_from_db()
    emergency.status = "completed"  # the deployment engine's part, not built yet
    emergency.save(update_fields=["status"])
    reviewer = UserFactory(username="pat", capacities=["product"])
    assert decide(reviewer, emergency, capacity="product").status_code == 201
    assert detail(emergency, developer)["status"] == "completed"
    quinn = UserFactory(username="quinn")
    rejected = decide(quinn, emergency, decision="reject")
    assert rejected.status_code == 201  # a rejection in review is recorded, the status left alone
    assert detail(emergency, developer)["status"] == "completed"
    assert AuditEvent.objects.filter(action="change.decision.reject", actor_id=quinn.pk).exists()


def test_the_when_gate_lets_an_emergency_deploy_through_a_freeze_and_holds_a_normal_change(
    emergency, developer, release_manager, production
):
    from changes.calendar import deploy_timing
    from changes.selectors import change_detail, change_quorum, deploy_gates

    with transaction.atomic():
        services.change_decide(actor=UserFactory(role="sre"), change=emergency, decision="approve")
    start = datetime(2027, 3, 3, 13, tzinfo=UTC)  # inside "Launch week"
    services.change_schedule(actor=developer, change=emergency, start=start, end=start + timedelta(hours=1))
    emergency.refresh_from_db()
    assert deploy_timing(emergency, now=start - timedelta(minutes=1))[0] is False  # not its slot yet
    may, why = deploy_timing(emergency, now=start + timedelta(minutes=5))
    assert may and why.endswith("through the freeze “Launch week” (an exception).")
    clock.set_offset(start + timedelta(minutes=5) - datetime.now(UTC))  # the portal's now, in the slot
    detail = change_detail(release_manager, emergency.pk)
    when = next(g for g in deploy_gates(detail, change_quorum(detail)) if g["name"] == "When")
    assert when["state"] == "ok" and "an exception" in when["detail"]
    normal = change_create(developer, environment=production)
    normal.scheduled_start, normal.scheduled_end = start, start + timedelta(hours=1)
    may, why = deploy_timing(normal, now=start + timedelta(minutes=5))
    assert not may and why.startswith("Production is frozen until 2027-03-08 01:00 CET (Launch week)")
    assert deploy_timing(normal, now=datetime(2027, 3, 9, 1, 30, tzinfo=UTC)) == (
        False,
        "Its slot (Wed 2027-03-03 14:00-15:00 CET) has passed: schedule it again.",
    )


EMERGENCY = {
    "title": "Restore sign-in",
    "description": "Reverts the cookie change.",
    "rollback_plan": "Revert.",
    "change_type": "emergency",
    "environment": "production",
}


def file_emergency(person, incident):
    return client_for(person).post("/api/v1/changes/", {**EMERGENCY, "incident": incident.pk}, format="json")


@pytest.mark.parametrize(
    ("incident", "says"),
    [
        ({"severity": "P3"}, "is a P3; the emergency lane opens for a P1 or worse"),
        ({"severity": "P2"}, "is a P2; the emergency lane opens for a P1 or worse"),
        ({"status": "resolved"}, "is resolved"),
    ],
)
def test_the_emergency_lane_stays_shut_for_a_minor_or_resolved_incident(
    developer, production, incident, says
):
    from changes.models import ChangeRequest

    before = ChangeRequest.objects.count(), AuditEvent.objects.count()
    response = file_emergency(developer, IncidentFactory(**incident))
    assert response.status_code == 400, response.json()
    assert says in response.json()["detail"]
    assert (ChangeRequest.objects.count(), AuditEvent.objects.count()) == before


def test_an_incident_the_requester_declared_alone_opens_no_lane_until_someone_else_is_on_it(
    developer, production, sre
):
    """The attack: declare "P1: typo" yourself and file an emergency change for it."""
    from incidents import services as incidents

    with transaction.atomic():
        incident = incidents.incident_declare(actor=developer, title="Typo on the home page", severity="P1")
    response = file_emergency(developer, incident)
    assert response.status_code == 400
    assert "nobody else is on it yet" in response.json()["detail"]
    with transaction.atomic():
        incidents.incident_acknowledge(actor=sre, incident=incident)
    assert file_emergency(developer, incident).status_code == 201


def test_an_incident_someone_else_declared_or_an_alarm_raised_opens_the_lane(developer, production, sre):
    assert file_emergency(developer, IncidentFactory(declared_by=sre)).status_code == 201
    assert file_emergency(developer, IncidentFactory(source="alarm")).status_code == 201


def test_the_lanes_severity_is_the_policys(developer, production):
    policy = production.approval_policy
    policy.emergency_min_severity = "P3"
    policy.save()
    assert file_emergency(developer, IncidentFactory(severity="P3")).status_code == 201
    policy.emergency_min_severity = "P0"
    policy.save()
    refused = file_emergency(developer, IncidentFactory(severity="P1"))
    assert refused.status_code == 400 and "opens for a P0" in refused.json()["detail"]


def test_an_edit_cannot_turn_a_change_into_an_emergency_on_a_minor_incident(developer, production):
    change = change_create(developer, environment=production, services=[ServiceFactory()])
    events = AuditEvent.objects.count()
    response = client_for(developer).patch(
        f"/api/v1/changes/{change.pk}/",
        {"change_type": "emergency", "incident": IncidentFactory(severity="P3").pk},
        format="json",
    )
    assert response.status_code == 400 and "is a P3" in response.json()["detail"]
    change.refresh_from_db()
    assert change.change_type == "normal" and AuditEvent.objects.count() == events


def test_with_nobody_to_judge_the_incident_the_emergency_lane_stays_shut(developer, production, monkeypatch):
    """The lane's incident check is incidents' (a required hook): unwired, it refuses, never opens."""
    from changes.models import ChangeRequest
    from portal import hooks

    monkeypatch.setattr(hooks.emergency_grounds, "_subscribers", [])
    before = ChangeRequest.objects.count(), AuditEvent.objects.count()
    with pytest.raises(hooks.HookUnanswered, match="emergency_grounds has no subscriber"):
        change_create(developer, change_type="emergency", environment=production, incident=IncidentFactory())
    assert (ChangeRequest.objects.count(), AuditEvent.objects.count()) == before
