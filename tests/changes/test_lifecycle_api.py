"""Every transition of a change request the API offers today, every refusal, and the audit events
they leave. A refusal leaves the change as it was: status, revision, decisions and audit trail."""

import pytest

from changes.models import Approval, ChangeRequest
from portal.models import AuditEvent, Notification
from tests.conftest import client_for
from tests.factories import (
    UserFactory,
    change_create,
    otp_code,
    totp_device,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalogue")]

NEW_CHANGE = {
    "title": "Faster render queue",
    "description": "Moves rendering to the new queue.",
    "rollback_plan": "Switch traffic back to blue.",
    "environment": "production",
    "services": ["web"],
}


def events(change_id: int, action: str):
    return AuditEvent.objects.filter(
        object_type="changes.changerequest", object_id=str(change_id), action=action
    ).order_by("id")


def state(change_id: int) -> tuple:
    """What a refusal must leave untouched."""
    change = ChangeRequest.objects.get(pk=change_id)
    audit = AuditEvent.objects.filter(object_type="changes.changerequest", object_id=str(change_id))
    return (
        change.status,
        change.revision,
        change.title,
        Approval.objects.filter(change=change).count(),
        audit.count(),
    )


def decide(person, change_id: int, decision: str):
    response = client_for(person).post(
        f"/api/v1/changes/{change_id}/approvals/",
        {"decision": decision, "otp": otp_code(totp_device(person))},
        format="json",
    )
    assert response.status_code == 201, response.json()


def cancel(change_id: int, by) -> None:
    response = client_for(by).post(f"/api/v1/changes/{change_id}/cancel/", {"reason": "Not needed."})
    assert response.status_code == 200, response.json()


def test_change_create_files_a_draft_and_audits_it(developer):
    response = client_for(developer).post("/api/v1/changes/", NEW_CHANGE, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["revision"], body["requester"]) == ("draft", 1, "dev")
    assert body["number"] == f"CHG-{body['id']:06d}"
    assert body["services"] == ["web"] and body["environment"] == "production"
    (event,) = events(body["id"], "change.create")
    assert event.actor_id == developer.pk
    assert event.after["title"] == "Faster render queue" and event.after["status"] == "draft"


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("environment", "nowhere", "nowhere"),
        ("services", ["web", "ghost"], "ghost"),
        ("stakeholders", ["nobody-here"], "nobody-here"),
        ("rollback_plan", "", "rollback_plan"),
        ("rollback_plan", "   ", "rollback_plan"),
        ("rollback_plan", None, "rollback_plan"),  # left out
    ],
)
def test_change_create_refuses_bad_input_naming_the_field(developer, field, value, says):
    data = {**NEW_CHANGE, field: value}
    if value is None:
        del data[field]

    response = client_for(developer).post("/api/v1/changes/", data, format="json")

    assert response.status_code == 400
    body = response.json()
    assert field in body["errors"] and says in body["detail"]
    assert not ChangeRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="change.create").exists()


def test_change_create_is_refused_to_an_auditor(auditor):
    response = client_for(auditor).post("/api/v1/changes/", NEW_CHANGE, format="json")

    assert response.status_code == 403
    assert not ChangeRequest.objects.exists()


def test_change_edit_by_the_requester_changes_the_draft_and_audits_it(developer):
    change = change_create(developer)
    UserFactory(username="bo")

    response = client_for(developer).patch(
        f"/api/v1/changes/{change.pk}/",
        {"title": "Quicker render queue", "stakeholders": ["bo"]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["title"], body["stakeholders"], body["status"]) == ("Quicker render queue", ["bo"], "draft")
    assert body["revision"] == 1  # a draft has no decisions to make stale
    (event,) = events(change.pk, "change.update")
    assert event.actor_id == developer.pk
    assert (event.before["title"], event.after["title"]) == ("Faster render queue", "Quicker render queue")


@pytest.mark.parametrize(
    "who, cancelled, data, expected",
    [
        ("someone else", False, {"title": "Mine now"}, 403),  # not theirs to edit
        ("requester", True, {"title": "Too late"}, 409),
        ("requester", False, {"rollback_plan": ""}, 400),
        ("requester", False, {"services": ["ghost"]}, 400),
        ("requester", False, {"environment": "nowhere"}, 400),
    ],
)
def test_change_edit_refusals_leave_the_change_as_it_was(developer, qa, who, cancelled, data, expected):
    change = change_create(developer)
    if cancelled:
        cancel(change.pk, developer)
    before = state(change.pk)

    response = client_for(developer if who == "requester" else qa).patch(
        f"/api/v1/changes/{change.pk}/", data, format="json"
    )

    assert response.status_code == expected, response.json()
    assert response.json()["detail"]
    assert state(change.pk) == before


def test_change_submit_sends_the_draft_to_approvers_and_tells_stakeholders(developer):
    bo = UserFactory(username="bo")
    change = change_create(developer, stakeholders=[bo], stakeholder_channels=["#releases"])

    response = client_for(developer).post(f"/api/v1/changes/{change.pk}/submit/")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "submitted" and body["submitted_at"]
    (event,) = events(change.pk, "change.submitted")
    assert (event.actor_id, event.before, event.after) == (
        developer.pk,
        {"status": "draft"},
        {"status": "submitted"},
    )
    told = Notification.objects.filter(subject__contains=f"{change.number} submitted")
    assert {(n.channel, n.recipient) for n in told} == {
        ("email", "dev@example.com"),
        ("email", "bo@example.com"),
        ("slack", "#releases"),
    }


@pytest.mark.parametrize(
    "who, setup, expected",
    [
        ("someone else", "draft", 403),  # not theirs to submit
        ("requester", "submitted", 409),
        ("requester", "cancelled", 409),
    ],
)
def test_change_submit_refusals_leave_the_change_as_it_was(developer, qa, who, setup, expected):
    change = change_create(developer)
    if setup == "submitted":
        client_for(developer).post(f"/api/v1/changes/{change.pk}/submit/")
    elif setup == "cancelled":
        cancel(change.pk, developer)
    before = state(change.pk)

    response = client_for(developer if who == "requester" else qa).post(
        f"/api/v1/changes/{change.pk}/submit/"
    )

    assert response.status_code == expected, response.json()
    assert response.json()["detail"]
    assert state(change.pk) == before


@pytest.mark.parametrize("submitted", [False, True])
@pytest.mark.parametrize("who", ["requester", "release manager"])
def test_change_cancel_by_requester_or_release_manager_with_a_reason(
    developer, release_manager, who, submitted
):
    change = change_create(developer)
    if submitted:
        client_for(developer).post(f"/api/v1/changes/{change.pk}/submit/")
    actor = developer if who == "requester" else release_manager

    response = client_for(actor).post(
        f"/api/v1/changes/{change.pk}/cancel/", {"reason": "Superseded by CHG-9."}
    )

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "cancelled"
    (event,) = events(change.pk, "change.cancelled")
    assert event.actor_id == actor.pk
    assert event.after == {"status": "cancelled", "note": "Superseded by CHG-9."}


@pytest.mark.parametrize(
    "who, data, already_cancelled, expected",
    [
        ("someone else", {"reason": "Mine to cancel?"}, False, 403),  # not theirs to cancel
        ("auditor", {"reason": "Audit says no."}, False, 403),
        ("requester", {}, False, 400),
        ("requester", {"reason": "   "}, False, 400),
        ("requester", {"reason": "Twice."}, True, 409),
    ],
)
def test_change_cancel_refusals_leave_the_change_as_it_was(
    developer, qa, auditor, who, data, already_cancelled, expected
):
    change = change_create(developer)
    if already_cancelled:
        cancel(change.pk, developer)
    before = state(change.pk)
    actor = {"requester": developer, "someone else": qa, "auditor": auditor}[who]

    response = client_for(actor).post(f"/api/v1/changes/{change.pk}/cancel/", data, format="json")

    assert response.status_code == expected, response.json()
    assert state(change.pk) == before


@pytest.mark.parametrize(
    "decision, status", [("request_changes", "changes_requested"), ("reject", "rejected")]
)
def test_change_resubmit_after_an_edit_that_answers_the_decision(developer, qa, decision, status):
    change = change_create(developer)
    api = client_for(developer)
    api.post(f"/api/v1/changes/{change.pk}/submit/")
    decide(qa, change.pk, decision)
    assert ChangeRequest.objects.get(pk=change.pk).status == status

    edited = api.patch(
        f"/api/v1/changes/{change.pk}/", {"rollback_plan": "Restore the snapshot."}, format="json"
    )
    assert edited.status_code == 200, edited.json()
    assert (edited.json()["status"], edited.json()["revision"]) == (status, 2)
    (answered,) = edited.json()["approvals"]
    assert answered["dismissed_at"] and "revision 2" in answered["dismissed_reason"]

    response = api.post(f"/api/v1/changes/{change.pk}/submit/")

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["revision"]) == ("submitted", 2)
    assert [e.before["status"] for e in events(change.pk, "change.submitted")] == ["draft", status]
    assert events(change.pk, "change.update").last().after["decisions_dismissed"] == 1


@pytest.mark.parametrize("decision", ["request_changes", "reject"])
def test_change_resubmit_without_an_edit_is_refused(developer, qa, decision):
    change = change_create(developer)
    client_for(developer).post(f"/api/v1/changes/{change.pk}/submit/")
    decide(qa, change.pk, decision)
    before = state(change.pk)

    response = client_for(developer).post(f"/api/v1/changes/{change.pk}/submit/")

    assert response.status_code == 409
    assert "Edit the change" in response.json()["detail"]
    assert state(change.pk) == before


def test_change_resubmit_after_an_edit_that_changes_nothing_is_refused(developer, qa):
    change = change_create(developer)
    api = client_for(developer)
    api.post(f"/api/v1/changes/{change.pk}/submit/")
    decide(qa, change.pk, "request_changes")

    api.patch(f"/api/v1/changes/{change.pk}/", {"title": change.title}, format="json")
    response = api.post(f"/api/v1/changes/{change.pk}/submit/")

    assert response.status_code == 409
    assert ChangeRequest.objects.get(pk=change.pk).status == "changes_requested"
