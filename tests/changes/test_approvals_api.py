"""Approvals and sign-offs through POST /approvals/ with a fresh OTP, and the quorum they build:
3 approvals including a code owner, plus security, product and engineering-lead sign-offs."""

import pytest

from changes.models import Approval, ChangeRequest
from portal.models import AuditEvent, Notification
from tests.conftest import client_for
from tests.factories import (
    EnvironmentFactory,
    ServiceFactory,
    UserFactory,
    change_create,
    otp_code,
    totp_device,
)

pytestmark = pytest.mark.django_db
WRONG_CODE = object()  # replaced by a code one off the person's current one


@pytest.fixture
def change(developer):
    """A submitted change to the `web` service, whose code alex-owner owns."""
    change = change_create(developer, environment=EnvironmentFactory(), services=[ServiceFactory()])
    response = client_for(developer).post(f"/api/v1/changes/{change.pk}/submit/")
    assert response.status_code == 200, response.json()
    return change


@pytest.fixture
def quorum():
    """Three approvers who make the quorum between them: one owns the code, each holds a sign-off."""
    return [
        (UserFactory(username="alex", github_login="alex-owner", capacities=["security"]), "security"),
        (UserFactory(username="pat", capacities=["product"]), "product"),
        (UserFactory(username="lee", capacities=["engineering_lead"]), "engineering_lead"),
    ]


def decide(person, change_id: int, decision: str = "approve", capacity: str = "", **overrides):
    body = {"decision": decision, "capacity": capacity, "comment": "", "otp": otp_code(totp_device(person))}
    body.update(overrides)
    return client_for(person).post(
        f"/api/v1/changes/{change_id}/approvals/",
        {k: v for k, v in body.items() if v is not None},
        format="json",
    )


def approved_by(people, change_id: int) -> None:
    for person, capacity in people:
        response = decide(person, change_id, capacity=capacity)
        assert response.status_code == 201, response.json()


def detail(change, by) -> dict:
    return client_for(by).get(f"/api/v1/changes/{change.pk}/").json()


def events(change_id: int, action: str):
    return AuditEvent.objects.filter(
        object_type="changes.changerequest", object_id=str(change_id), action=action
    ).order_by("id")


def state(change_id: int) -> tuple:
    change = ChangeRequest.objects.get(pk=change_id)
    audit = AuditEvent.objects.filter(object_type="changes.changerequest", object_id=str(change_id))
    return change.status, change.revision, Approval.objects.filter(change=change).count(), audit.count()


def test_change_approve_records_one_decision_and_audits_it(change, qa):
    response = decide(qa, change.pk, comment="Looks right.")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["approver"], body["decision"], body["revision"], body["code_owner"]) == (
        "qa",
        "approve",
        1,
        False,
    )
    (event,) = events(change.pk, "change.decision.approve")
    assert event.actor_id == qa.pk
    assert event.after == {
        "decision": "approve",
        "capacity": "",
        "code_owner": False,
        "revision": 1,
        "commit": None,  # no repository here: there is no commit to give it on
        "second_factor": "authenticator app “Test phone” (TOTP)",
        "comment": "Looks right.",
    }
    assert ChangeRequest.objects.get(pk=change.pk).status == "submitted"
    listed = client_for(qa).get(f"/api/v1/changes/{change.pk}/approvals/").json()
    assert [a["approver"] for a in listed] == ["qa"]


def test_change_approve_by_a_code_owner_is_marked_so(change):
    alex = UserFactory(username="alex", github_login="Alex-Owner")

    response = decide(alex, change.pk)

    assert response.status_code == 201 and response.json()["code_owner"] is True
    assert detail(change, alex)["quorum"]["code_owner_approvals"] == 1


def _draft(change, developer):
    return change_create(developer).pk


def _cancelled(change, developer):
    client_for(developer).post(f"/api/v1/changes/{change.pk}/cancel/", {"reason": "Not needed."})
    return change.pk


@pytest.mark.parametrize(
    "who, target, body, expected, says",
    [
        ("requester", None, {}, 400, "own change"),
        ("auditor", None, {}, 403, "change.approve"),
        ("qa", None, {"otp": None}, 403, "`otp`"),
        ("qa", None, {"otp": WRONG_CODE}, 403, "not valid"),
        ("qa", _draft, {}, 409, "draft"),
        ("qa", _cancelled, {}, 409, "cancelled"),
        ("qa", None, {"capacity": "security"}, 400, "security"),
        ("qa", None, {"capacity": "policy_admin"}, 400, "capacity"),
        ("sam", None, {"decision": "reject", "capacity": "security"}, 400, "sign-off is an approval"),
        ("qa", None, {"decision": "maybe"}, 400, "decision"),
    ],
)
def test_change_decide_refusals_leave_the_change_as_it_was(
    change, developer, auditor, qa, who, target, body, expected, says
):
    person = {"requester": developer, "auditor": auditor, "qa": qa}.get(who) or UserFactory(
        username=who, capacities=["security"]
    )
    change_id = target(change, developer) if target else change.pk
    if body.get("otp") is WRONG_CODE:
        body = {"otp": f"{(int(otp_code(totp_device(person))) + 1) % 1_000_000:06d}"}
    before = state(change_id)

    response = decide(person, change_id, **body)

    assert response.status_code == expected, response.json()
    assert says in response.json()["detail"]
    assert state(change_id) == before


def test_change_approve_with_a_code_already_used_is_refused(change, qa):
    code = otp_code(totp_device(qa))
    assert decide(qa, change.pk, otp=code).status_code == 201
    before = state(change.pk)

    response = decide(qa, change.pk, decision="request_changes", otp=code)

    assert response.status_code == 403
    assert "already used" in response.json()["detail"]
    assert state(change.pk) == before


def test_change_approve_twice_by_the_same_person_is_refused(change, qa):
    assert decide(qa, change.pk).status_code == 201
    before = state(change.pk)

    response = decide(qa, change.pk)

    assert response.status_code == 409
    assert "one person counts once" in response.json()["detail"]
    assert state(change.pk) == before


def test_change_decision_replaced_by_a_different_one_of_the_same_person(change, qa):
    first = decide(qa, change.pk).json()

    response = decide(qa, change.pk, decision="request_changes", comment="Add a canary.")

    assert response.status_code == 201, response.json()
    old, new = Approval.objects.filter(change=change).order_by("id")
    assert old.pk == first["id"] and old.dismissed_at and "Replaced" in old.dismissed_reason
    assert (new.decision, new.dismissed_at) == ("request_changes", None)
    assert ChangeRequest.objects.get(pk=change.pk).status == "changes_requested"
    assert events(change.pk, "change.decision.request_changes").count() == 1
    assert events(change.pk, "change.changes_requested").count() == 1


def test_change_quorum_of_three_with_a_code_owner_and_every_sign_off_approves_it(change, quorum, developer):
    approved_by(quorum[:2], change.pk)
    assert ChangeRequest.objects.get(pk=change.pk).status == "submitted"

    approved_by(quorum[2:], change.pk)

    body = detail(change, developer)
    assert body["status"] == "approved" and body["approved_at"]
    assert body["quorum"]["satisfied"] is True
    assert body["quorum"]["sign_offs"] == ["engineering_lead", "product", "security"]
    assert body["quorum"]["explanation"] == "3 of 3 approvals"
    (event,) = events(change.pk, "change.approved")
    assert event.actor_id is None and event.after["note"] == "approval quorum reached"
    item = next(i for i in body["checklist"] if i["key"] == "approved")
    assert (item["done"], item["done_by"]) == (True, None)
    assert item["done_at"] and item["evidence"] == "3 of 3 approvals"
    assert events(change.pk, "change.checklist_prove").filter(before__item="approved").count() == 1


def test_change_quorum_explains_what_is_missing(change, qa, devops, developer):
    approved_by([(qa, ""), (devops, "")], change.pk)

    quorum = detail(change, developer)["quorum"]

    assert quorum["satisfied"] is False
    assert quorum["explanation"] == (
        "2 of 3 approvals; 0 of 1 code owner approvals; security sign-off missing; "
        "product sign-off missing; engineering lead sign-off missing"
    )
    assert quorum["missing_sign_offs"] == ["security", "product", "engineering_lead"]


def test_change_quorum_counts_a_person_with_two_capacities_once(change, developer):
    sam = UserFactory(username="sam", github_login="alex-owner", capacities=["security", "product"])
    assert decide(sam, change.pk, capacity="security").status_code == 201

    again = decide(sam, change.pk, capacity="product")

    assert again.status_code == 201  # replaces the first: one approval, one sign-off
    quorum = detail(change, developer)["quorum"]
    assert (quorum["approvals"], quorum["code_owner_approvals"], quorum["sign_offs"]) == (1, 1, ["product"])
    assert Approval.objects.filter(change=change, dismissed_at__isnull=True).count() == 1


def test_change_quorum_is_not_reached_by_sign_offs_of_too_few_people(change, developer):
    """Six people's worth of capacities held by two people still make two approvals."""
    alex = UserFactory(username="alex", github_login="alex-owner", capacities=["security", "product"])
    lee = UserFactory(username="lee", capacities=["engineering_lead"])
    approved_by([(alex, "security"), (lee, "engineering_lead")], change.pk)

    body = detail(change, developer)

    assert body["status"] == "submitted"
    assert body["quorum"]["explanation"] == "2 of 3 approvals; product sign-off missing"


@pytest.mark.parametrize(
    "decision, status, says",
    [("reject", "rejected", "rejected it"), ("request_changes", "changes_requested", "requested changes")],
)
def test_change_rejection_or_request_for_changes_blocks_the_quorum(
    change, quorum, developer, decision, status, says
):
    approved_by(quorum[:2], change.pk)
    bo = UserFactory(username="bo", first_name="Bo", last_name="Li")

    assert decide(bo, change.pk, decision=decision).status_code == 201
    late = decide(quorum[2][0], change.pk, capacity=quorum[2][1])

    assert late.status_code == 409  # blocked until the requester answers
    body = detail(change, developer)
    assert body["status"] == status and body["quorum"]["satisfied"] is False
    assert body["quorum"]["explanation"].endswith(f"Bo Li {says}")
    assert events(change.pk, f"change.{status}").count() == 1
    assert Notification.objects.filter(recipient="dev@example.com", subject__contains="Bo Li").count() == 1


def test_change_edit_after_approval_dismisses_every_decision_and_says_so(change, quorum, developer):
    approved_by(quorum, change.pk)

    response = client_for(developer).patch(
        f"/api/v1/changes/{change.pk}/", {"description": "Also moves thumbnails."}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["revision"]) == ("submitted", 2)
    assert len(body["approvals"]) == 3
    for approval in body["approvals"]:
        assert (
            approval["dismissed_at"] and approval["dismissed_reason"] == "The change was edited (revision 2)."
        )
    assert body["quorum"]["satisfied"] is False and body["quorum"]["explanation"].startswith(
        "0 of 3 approvals"
    )
    update = events(change.pk, "change.update").last()
    assert update.after["decisions_dismissed"] == 3 and update.after["revision"] == 2
    back = events(change.pk, "change.submitted").last()
    assert back.before == {"status": "approved"}
    assert back.after["note"] == "edited after approval: approvals dismissed"
    item = next(i for i in body["checklist"] if i["key"] == "approved")
    assert (item["done"], item["done_at"], item["evidence"]) == (False, None, "")
    assert events(change.pk, "change.checklist_unprove").filter(before__item="approved").count() == 1


def test_change_edit_after_approval_lets_the_same_people_approve_again(change, quorum, developer):
    approved_by(quorum, change.pk)
    client_for(developer).patch(f"/api/v1/changes/{change.pk}/", {"title": "Renamed"}, format="json")

    approved_by(quorum, change.pk)

    body = detail(change, developer)
    assert body["status"] == "approved" and body["quorum"]["approvals"] == 3
    assert {a["revision"] for a in body["approvals"] if not a["dismissed_at"]} == {2}
    assert events(change.pk, "change.approved").count() == 2


def test_change_edit_while_submitted_dismisses_standing_approvals(change, qa, developer):
    approved_by([(qa, "")], change.pk)

    body = (
        client_for(developer).patch(f"/api/v1/changes/{change.pk}/", {"risk": "high"}, format="json").json()
    )

    assert (body["status"], body["revision"], body["quorum"]["approvals"]) == ("submitted", 2, 0)
    assert "revision 2" in body["approvals"][0]["dismissed_reason"]


def test_change_rejected_after_approval_unticks_the_approved_item(change, quorum, developer):
    approved_by(quorum, change.pk)

    assert decide(UserFactory(username="bo"), change.pk, decision="reject").status_code == 201

    body = detail(change, developer)
    assert body["status"] == "rejected"
    assert next(i for i in body["checklist"] if i["key"] == "approved")["done"] is False


def test_change_approved_goes_back_to_submitted_when_a_sign_off_is_withdrawn(change, quorum, developer):
    approved_by(quorum, change.pk)
    alex, _ = quorum[0]

    assert decide(alex, change.pk).status_code == 201  # the same approval, without the security sign-off

    body = detail(change, developer)
    assert body["quorum"]["satisfied"] is False
    assert body["status"] == "submitted"
