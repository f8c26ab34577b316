"""Each change's own copy of its policy's checklist: people tick their items with evidence, and
integrations prove theirs through one hook (or read "not connected", never a fake tick)."""

import pytest

from changes import defaults
from changes.models import ChangeRequest, ChecklistItem
from portal.models import AuditEvent
from tests.conftest import client_for
from tests.factories import change_create

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


def test_checklist_item_ticked_by_a_person_with_evidence(developer, qa):
    change = change_create(developer)

    response = tick(change, "dashboards", qa, evidence="https://grafana.example.com/d/render")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["done"], body["done_by"], body["evidence"]) == (
        True,
        "qa",
        "https://grafana.example.com/d/render",
    )
    assert body["done_at"]
    (event,) = audited(change, "change.checklist_tick")
    assert event.actor_id == qa.pk
    assert event.before == {"item": "dashboards", "done": False, "evidence": ""}
    assert event.after == {
        "item": "dashboards",
        "done": True,
        "evidence": "https://grafana.example.com/d/render",
    }


def test_checklist_item_unticked_by_a_person_forgets_who_and_when(developer):
    change = change_create(developer)
    tick(change, "dashboards", developer, evidence="Reviewed.")

    response = tick(change, "dashboards", developer, done=False)

    body = response.json()
    assert (body["done"], body["done_by"], body["done_at"], body["evidence"]) == (False, None, None, "")
    assert audited(change, "change.checklist_untick").count() == 1


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
