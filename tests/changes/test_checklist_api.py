"""Each change's own copy of its policy's checklist: its requester and approvers (or the sign-off an
item names) tick its items with evidence, an untick after approval is told and shown, and
integrations prove theirs through one hook (or read "not connected", never a fake tick)."""

import re

import pytest
from django.db import transaction

from catalogue import defaults
from changes.models import ChangeRequest, ChecklistItem
from changes.services import change_decide, change_submit, change_update
from portal.models import AuditEvent, Notification
from tests.conftest import client_for, verified_login
from tests.factories import UserFactory, approved_change, change_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalogue")]

MIGRATION_KEYS = ["migrations_backward_compatible", "rollback_covers_schema"]


def checklist(change, by) -> list[dict]:
    response = client_for(by).get(f"/api/v1/changes/{change.pk}/checklist/")
    assert response.status_code == 200, response.json()
    return response.json()


def item(change, key: str) -> ChecklistItem:
    return ChecklistItem.objects.get(change=change, key=key)


def tick(change, key: str, by, **body):
    return client_for(by).patch(
        f"/api/v1/changes/{change.pk}/checklist/{item(change, key).pk}/",
        {"done": True, "evidence": "", **body},
        format="json",
    )


def submitted(requester):
    change = change_create(requester)
    with transaction.atomic():
        change_submit(actor=requester, change=change)
    return change


def audited(change, action: str):
    return AuditEvent.objects.filter(
        object_type="changes.changerequest", object_id=str(change.pk), action=action
    )


def test_checklist_is_copied_from_the_policy_when_the_change_is_created(developer):
    response = client_for(developer).post(
        "/api/v1/changes/",
        {"title": "T", "description": "D", "rollback_plan": "R", "environment": "production"},
        format="json",
    )

    items = response.json()["checklist"]
    assert len(items) == 25
    assert [i["key"] for i in items] == [i["key"] for i in defaults.CHECKLIST]
    on_call = next(i for i in items if i["key"] == "on_call_briefed")
    assert on_call["phases"] == ["pre", "before"] and on_call["gates_deploy"] is True
    assert next(i for i in items if i["key"] == "smoke_tests")["gates_deploy"] is False


def test_checklist_of_a_change_stays_as_it_was_when_the_policy_changes(developer):
    change = change_create(developer)
    policy = change.environment.approval_policy
    policy.checklist = [
        *policy.checklist[:3],
        {"key": "legal_review", "text": "Legal reviewed the change", "phases": ["pre"]},
    ]
    policy.save()

    kept = checklist(change, developer)
    newer = change_create(developer)

    assert [i["key"] for i in kept] == [i["key"] for i in defaults.CHECKLIST]
    assert [i["key"] for i in checklist(newer, developer)] == [
        "staging_soak",
        "no_critical_bugs",
        "security_audit",
        "legal_review",
    ]


def test_checklist_of_a_change_with_migrations_asks_for_compatible_migrations(developer):
    change = change_create(developer, has_migrations=True)

    keys = [i["key"] for i in checklist(change, developer)]

    assert len(keys) == 27 and keys[-2:] == MIGRATION_KEYS


def test_checklist_gains_the_migration_items_when_an_edit_turns_migrations_on(developer):
    change = change_create(developer)
    api = client_for(developer)

    for _ in range(2):  # a second edit adds nothing more
        response = api.patch(f"/api/v1/changes/{change.pk}/", {"has_migrations": True}, format="json")
        assert response.status_code == 200, response.json()

    keys = [i["key"] for i in response.json()["checklist"]]
    assert len(keys) == 27 and keys[-2:] == MIGRATION_KEYS
    assert response.json()["checklist_total"] == 27
    assert [i.position for i in ChecklistItem.objects.filter(change=change)] == list(range(27))


def test_checklist_item_ticked_by_the_requester_with_evidence(developer):
    change = change_create(developer)

    response = tick(change, "dashboards", developer, evidence="https://grafana.example.com/d/render")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["done"], body["done_by"], body["evidence"]) == (
        True,
        "dev",
        "https://grafana.example.com/d/render",
    )
    assert body["done_at"]
    (event,) = audited(change, "change.checklist_tick")
    assert event.actor_id == developer.pk
    assert event.before == {"item": "dashboards", "done": False, "evidence": ""}
    assert event.after == {
        "item": "dashboards",
        "done": True,
        "evidence": "https://grafana.example.com/d/render",
    }


def test_checklist_item_ticked_and_unticked_by_an_approver_of_the_change(developer, qa):
    change = submitted(developer)
    with transaction.atomic():
        change_decide(actor=qa, change=change, decision="approve")

    ticked = tick(change, "on_call_briefed", qa, evidence="Briefed the on-call in #sre.")
    unticked = tick(change, "on_call_briefed", qa, done=False)

    assert ticked.status_code == 200, ticked.json()
    assert (ticked.json()["done"], ticked.json()["done_by"]) == (True, "qa")
    assert unticked.status_code == 200, unticked.json()
    assert [e.actor_id for e in audited(change, "change.checklist_tick")] == [qa.pk]
    assert [e.actor_id for e in audited(change, "change.checklist_untick")] == [qa.pk]


def test_checklist_item_unticked_by_a_person_forgets_who_and_when(developer):
    change = change_create(developer)
    tick(change, "dashboards", developer, evidence="Reviewed.")

    response = tick(change, "dashboards", developer, done=False)

    body = response.json()
    assert (body["done"], body["done_by"], body["done_at"], body["evidence"]) == (False, None, None, "")
    (event,) = audited(change, "change.checklist_untick")
    assert event.after == {"item": "dashboards", "done": False, "evidence": "", "after_approval": False}
    assert not Notification.objects.filter(subject__contains="unticked").exists()


def test_checklist_item_already_unticked_is_left_alone(developer):
    change = change_create(developer)

    response = tick(change, "dashboards", developer, done=False)

    assert response.status_code == 200 and response.json()["done"] is False
    assert not audited(change, "change.checklist_untick").exists()


# Whose word a tick is: the requester's or an approver's, or the sign-off's the item names.


def assert_unchanged(change, key: str, before: ChecklistItem) -> None:
    after = item(change, key)
    assert (after.done, after.done_by_id, after.done_at, after.evidence) == (
        before.done,
        before.done_by_id,
        before.done_at,
        before.evidence,
    )


@pytest.mark.parametrize("decision", [None, "reject", "request_changes", "dismissed"])
def test_checklist_item_is_neither_ticked_nor_unticked_by_who_neither_filed_nor_approves_it(
    developer, decision
):
    ola = UserFactory(username="ola", role="developer")
    change = submitted(developer)
    if decision == "dismissed":  # approved, then the change was edited: that approval no longer stands
        with transaction.atomic():
            change_decide(actor=ola, change=change, decision="approve")
        with transaction.atomic():
            change_update(actor=developer, change=change, data={"title": "Faster render queue, v2"})
    elif decision:
        with transaction.atomic():
            change_decide(actor=ola, change=change, decision=decision)
    tick(change, "dashboards", developer, evidence="Reviewed.")
    untouched, done = item(change, "on_call_briefed"), item(change, "dashboards")
    events = AuditEvent.objects.count()

    ticking = tick(change, "on_call_briefed", ola, evidence="Trust me.")
    unticking = tick(change, "dashboards", ola, done=False)

    for response, text in ((ticking, "On-call team briefed"), (unticking, "Monitoring dashboards")):
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert detail.startswith(f"Only the requester or an approver of {change.number} ticks or unticks")
        assert text in detail
    assert_unchanged(change, "on_call_briefed", untouched)
    assert_unchanged(change, "dashboards", done)
    assert AuditEvent.objects.count() == events


def test_checklist_item_a_sign_off_vouches_for_is_refused_to_the_requester_and_to_approvers(developer, qa):
    sam = UserFactory(username="sam", capacities=["security"])
    change = submitted(developer)
    with transaction.atomic():
        change_decide(actor=qa, change=change, decision="approve")
    before = item(change, "security_audit")

    refused = [tick(change, "security_audit", person, evidence="Looks safe.") for person in (developer, qa)]

    for response in refused:
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert "vouched for by a holder of the security sign-off, other than the requester" in detail
    assert_unchanged(change, "security_audit", before)
    assert not audited(change, "change.checklist_tick").exists()

    assert tick(change, "security_audit", sam, evidence="https://pentest.example.com/42").status_code == 200
    ticked = item(change, "security_audit")
    for person in (developer, qa):
        response = tick(change, "security_audit", person, done=False)
        assert response.status_code == 400 and "security sign-off" in response.json()["detail"]
    assert_unchanged(change, "security_audit", ticked)
    assert not audited(change, "change.checklist_untick").exists()
    assert tick(change, "security_audit", sam, done=False).status_code == 200


def test_checklist_item_unticked_after_approval_is_audited_told_and_shown(client, developer, paris):
    change = approved_change(developer, paris, title="Faster render queue")
    (approver,) = [a.approver for a in change.approvals.all()]
    tick(change, "dashboards", developer, evidence="https://grafana.example.com/d/render")

    response = tick(change, "dashboards", developer, done=False)

    assert response.status_code == 200, response.json()
    (event,) = audited(change, "change.checklist_untick")
    assert event.actor_id == developer.pk
    assert event.after == {"item": "dashboards", "done": False, "evidence": "", "after_approval": True}
    told = Notification.objects.get(
        subject=f"{change.number}: “Monitoring dashboards reviewed and prepared” unticked after approval"
    )
    assert told.recipient == approver.email and told.channel == "email"
    assert "stands in the way of deploying" in told.body
    assert not Notification.objects.filter(recipient=developer.email, subject__contains="unticked").exists()
    verified_login(client, approver)
    page = client.get(f"/changes/{change.pk}/").content.decode()
    dashboards = item(change, "dashboards").pk
    shown = re.search(rf'<li class="check" id="item-{dashboards}">(.*?)</li>', page, re.S)
    assert shown and f"Unticked after approval by {event.actor_name}, " in shown.group(1)
    others = page.replace(shown.group(0), "")
    assert "Unticked after approval" not in others


# The change page's tick, the same rule in a form.


def test_the_change_page_offers_the_tick_only_to_the_requester_and_approvers(client, developer, qa):
    ola = UserFactory(username="ola", role="developer")
    change = submitted(developer)
    with transaction.atomic():
        change_decide(actor=qa, change=change, decision="approve")
    field = 'aria-label="Evidence for On-call team briefed"'
    for person, offered in ((developer, True), (qa, True), (ola, False)):
        verified_login(client, person)
        assert (field in client.get(f"/changes/{change.pk}/").content.decode()) is offered, person


def test_the_change_page_refuses_the_tick_of_who_neither_filed_nor_approves_it(client, developer):
    ola = UserFactory(username="ola", role="developer")
    change = submitted(developer)
    before = item(change, "on_call_briefed")
    url = f"/changes/{change.pk}/checklist/{before.pk}/"
    verified_login(client, ola)
    events = AuditEvent.objects.count()

    inline = client.post(url, {"done": "on", "evidence": "Trust me."}, headers={"HX-Request": "true"})
    whole = client.post(url, {"done": "on", "evidence": "Trust me."}, follow=True)

    assert inline.status_code == 400
    assert f"Only the requester or an approver of {change.number}" in inline.content.decode()
    assert f"Only the requester or an approver of {change.number}" in whole.content.decode()
    assert_unchanged(change, "on_call_briefed", before)
    assert AuditEvent.objects.count() == events


def test_the_change_page_takes_the_requesters_tick_and_shows_an_untick_after_approval(
    client, developer, paris
):
    change = approved_change(developer, paris)
    dashboards = item(change, "dashboards")
    url = f"/changes/{change.pk}/checklist/{dashboards.pk}/"
    verified_login(client, developer)

    ticked = client.post(url, {"done": "on", "evidence": "Reviewed."}, headers={"HX-Request": "true"})
    unticked = client.post(url, {}, headers={"HX-Request": "true"})

    assert ticked.status_code == 200 and f"by {developer.display_name}, " in ticked.content.decode()
    assert unticked.status_code == 200
    assert "Unticked after approval by " in unticked.content.decode()
    (event,) = audited(change, "change.checklist_untick")
    assert event.after["after_approval"] is True
    assert item(change, "dashboards").done is False


def test_the_change_page_tick_of_an_auditor_is_forbidden(client, developer, auditor):
    change = change_create(developer)
    verified_login(client, auditor)

    response = client.post(f"/changes/{change.pk}/checklist/{item(change, 'dashboards').pk}/", {"done": "on"})

    assert response.status_code == 403 and "change.create" in response.content.decode()
    assert item(change, "dashboards").done is False


@pytest.mark.parametrize(
    "key, says",
    [
        ("staging_soak", "the staging soak, which ticks it"),
        ("backup", "the pre-flight database snapshot, which ticks it"),
        ("post_deployment_report", "post-deployment verification, which ticks it"),
        ("smoke_tests", "the deployment engine, which ticks it"),
        ("approved", "the approval quorum, which ticks it"),
        ("rollback_plan", "nobody ticks it by hand"),
    ],
)
def test_checklist_item_an_integration_proves_is_refused_to_a_person(developer, key, says):
    change = change_create(developer)
    before = item(change, key)

    response = tick(change, key, developer, evidence="Trust me.", done=not before.done)

    assert response.status_code == 400
    assert says in response.json()["detail"]
    after = item(change, key)
    assert (after.done, after.done_by_id, after.evidence) == (before.done, before.done_by_id, before.evidence)
    assert not audited(change, "change.checklist_tick").exists()


def test_checklist_item_of_an_integration_not_connected_says_so(developer):
    from tests.factories import ApprovalPolicyFactory, EnvironmentFactory

    policy = ApprovalPolicyFactory(
        name="Load tested",
        checklist=[
            {"key": "load_test", "text": "Load test passed", "phases": ["pre"], "integration": "load"}
        ],
    )
    change = change_create(developer, environment=EnvironmentFactory(name="perf", approval_policy=policy))

    report = next(i for i in checklist(change, developer) if i["key"] == "load_test")

    assert (report["integration"], report["connected"], report["done"]) == ("load", False, False)
    refused = tick(change, "load_test", developer, evidence="Trust me.", done=True)
    assert refused.status_code == 400 and "is not connected yet" in refused.json()["detail"]


def test_checklist_rollback_plan_is_proven_when_the_change_is_created(developer):
    change = change_create(developer)

    proven = next(i for i in checklist(change, developer) if i["key"] == "rollback_plan")

    assert (proven["done"], proven["done_by"], proven["connected"]) == (True, None, True)
    assert proven["done_at"] and proven["evidence"] == "Documented in the change."
    (event,) = audited(change, "change.checklist_prove")
    assert event.actor_id is None and event.after["integration"] == "rollback_plan"


def test_checklist_stakeholders_notified_is_proven_on_submit(developer):
    change = change_create(developer)
    assert item(change, "stakeholders_notified").done is False

    client_for(developer).post(f"/api/v1/changes/{change.pk}/submit/")

    notified = next(i for i in checklist(change, developer) if i["key"] == "stakeholders_notified")
    assert (notified["done"], notified["done_by"]) == (True, None)
    assert notified["evidence"].startswith("Notified on submission at ")
    assert audited(change, "change.checklist_prove").filter(after__item="stakeholders_notified").count() == 1


def test_checklist_item_of_another_change_is_not_found(developer):
    change, other = change_create(developer), change_create(developer)

    response = client_for(developer).patch(
        f"/api/v1/changes/{change.pk}/checklist/{item(other, 'dashboards').pk}/",
        {"done": True},
        format="json",
    )

    assert response.status_code == 404
    assert item(other, "dashboards").done is False


def test_checklist_of_a_cancelled_change_is_closed(developer):
    change = change_create(developer)
    client_for(developer).post(f"/api/v1/changes/{change.pk}/cancel/", {"reason": "Not needed."})

    response = tick(change, "dashboards", developer)

    assert response.status_code == 409
    assert item(change, "dashboards").done is False
    assert ChangeRequest.objects.get(pk=change.pk).status == "cancelled"


def test_checklist_can_be_read_by_an_auditor(developer, auditor):
    assert len(checklist(change_create(developer), auditor)) == 25


def test_checklist_item_cannot_be_ticked_by_an_auditor(developer, auditor):
    change = change_create(developer)

    response = tick(change, "dashboards", auditor, evidence="Seen it.")

    assert response.status_code in (400, 403)
    assert "Auditors" in response.json()["detail"] or "change.create" in response.json()["detail"]
    assert item(change, "dashboards").done is False
    assert not audited(change, "change.checklist_tick").exists()


def test_checklist_item_tick_by_an_auditor_is_forbidden(developer, auditor):
    change = change_create(developer)

    response = tick(change, "dashboards", auditor, evidence="Seen it.")

    assert response.status_code == 403
