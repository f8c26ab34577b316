import re

import pytest
from django.db import transaction

from changes.services import change_decide, change_submit, change_update
from portal.models import Notification
from tests.conftest import client_for
from tests.factories import UserFactory, change_create

pytestmark = pytest.mark.django_db


def test_detail_says_what_the_caller_may_do_and_why_not(developer, qa, auditor):
    change = change_create(developer)
    mine = client_for(developer).get(f"/api/v1/changes/{change.pk}/").json()["actions"]
    assert mine["edit"] == {"allowed": True, "reason": None}
    assert mine["submit"] == {"allowed": True, "reason": None}
    assert mine["decide"] == {"allowed": False, "reason": "Nobody approves their own change."}
    theirs = client_for(qa).get(f"/api/v1/changes/{change.pk}/").json()["actions"]
    assert theirs == {
        "decide": {
            "allowed": False,
            "reason": f"{change.number} is draft: decisions are taken while it is submitted or approved.",
        }
    }
    assert client_for(auditor).get(f"/api/v1/changes/{change.pk}/").json()["actions"] == {}


def test_unknown_requester_filter_is_a_400(developer):
    response = client_for(developer).get("/api/v1/changes/", {"requester": "nobody-by-that-name"})
    assert response.status_code == 400 and response.json()["detail"].startswith("requester: ")


def test_an_edit_tells_each_person_whose_decision_it_dismissed(developer):
    alex = UserFactory(username="alex", email="alex@example.com")
    change = change_create(developer)
    with transaction.atomic():
        change_submit(actor=developer, change=change)
        change_decide(actor=alex, change=change, decision="approve")
    with transaction.atomic():
        change_update(actor=developer, change=change, data={"title": "Faster render queue, take two"})
    told = Notification.objects.get(recipient="alex@example.com", subject__contains="was edited")
    assert "decide anew" in told.body


def test_saving_an_unchanged_change_is_no_edit(developer):
    alex = UserFactory(username="alex")
    change = change_create(developer)
    with transaction.atomic():
        change_submit(actor=developer, change=change)
        change_decide(actor=alex, change=change, decision="approve")
    with transaction.atomic():
        same = change_update(
            actor=developer,
            change=change,
            data={"title": change.title, "services": list(change.services.all())},
        )
    assert same.revision == 1 and same.decisions_dismissed == 0
    assert change.approvals.filter(dismissed_at__isnull=True).count() == 1


def test_an_approved_change_is_not_submitted_again_without_an_edit(developer):
    from changes.models import ChangeRequest

    approvers = [
        UserFactory(username="alex", github_login="alex-owner"),
        UserFactory(username="bo"),
        UserFactory(username="casey"),
        UserFactory(username="sam", capacities=["security"]),
        UserFactory(username="pat", capacities=["product"]),
        UserFactory(username="lee", capacities=["engineering_lead"]),
    ]
    change = change_create(developer)
    with transaction.atomic():
        change_submit(actor=developer, change=change)
    for person, capacity in zip(
        approvers, ["", "", "", "security", "product", "engineering_lead"], strict=True
    ):
        with transaction.atomic():
            change_decide(actor=person, change=change, decision="approve", capacity=capacity)
    response = client_for(developer).post(f"/api/v1/changes/{change.pk}/submit/")
    assert response.status_code == 409
    assert ChangeRequest.objects.get(pk=change.pk).status == "approved"
    assert "submit" not in client_for(developer).get(f"/api/v1/changes/{change.pk}/").json()["actions"]


@pytest.mark.parametrize("query", ["CHG-²", "²", "CHG-", "99999999999999999999999"])
def test_odd_searches_are_answered_not_crashed(developer, query):
    assert client_for(developer).get("/api/v1/changes/", {"q": query}).status_code == 200


def test_a_tampered_cursor_on_the_page_starts_over(client, developer):
    from tests.conftest import verified_login

    verified_login(client, developer)
    response = client.get("/changes/", {"cursor": "garbage", "status": "draft"})
    assert response.status_code == 302 and response["Location"] == "/changes/?status=draft"


def test_waiting_for_me_shows_a_change_whose_edit_dismissed_my_approval(developer):
    from changes.selectors import my_work

    alex, bo = UserFactory(username="alex"), UserFactory(username="bo")
    change = change_create(developer)
    with transaction.atomic():
        change_submit(actor=developer, change=change)
        change_decide(actor=alex, change=change, decision="approve")
    with transaction.atomic():
        change_update(actor=developer, change=change, data={"title": "Edited"})
        change_decide(actor=bo, change=change, decision="approve")
    assert [c.pk for c in my_work(alex)["waiting_for_me"]] == [change.pk]
    assert my_work(bo)["waiting_for_me"] == []


def test_detail_page_queries_stay_flat_with_comment_threads(client, developer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from changes.services import comment_add
    from tests.conftest import verified_login

    def queries_with(threads: int) -> int:
        change = change_create(developer)
        for n in range(threads):
            with transaction.atomic():
                parent = comment_add(actor=developer, change=change, body=f"Thread {n}")
                comment_add(actor=developer, change=change, body="A reply", parent=parent)
        client.get(f"/changes/{change.pk}/")
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/changes/{change.pk}/").status_code == 200
        return len(captured)

    verified_login(client, developer)
    assert queries_with(1) == queries_with(6)


def test_security_audit_is_ticked_only_by_a_security_sign_off_holder_other_than_the_requester(developer, qa):
    sam = UserFactory(username="sam", capacities=["security"])
    change = change_create(developer)
    item = change.checklist.get(key="security_audit")
    url = f"/api/v1/changes/{change.pk}/checklist/{item.pk}/"
    body = {"done": True, "evidence": "https://pentest.example.com/report/42"}
    for person in (developer, qa):
        response = client_for(person).patch(url, body, format="json")
        assert response.status_code == 400 and "security sign-off" in response.json()["detail"]
    response = client_for(sam).patch(url, body, format="json")
    assert response.status_code == 200 and response.json()["done_by"] == "sam"


def test_the_detail_page_offers_the_security_item_only_to_its_vouchers(client, developer):
    from tests.conftest import verified_login

    sam = UserFactory(username="sam", capacities=["security"])
    change = change_create(developer)
    verified_login(client, developer)
    assert (
        'aria-label="Evidence for Security audit completed"'
        not in client.get(f"/changes/{change.pk}/").content.decode()
    )
    verified_login(client, sam)
    assert (
        'aria-label="Evidence for Security audit completed"'
        in client.get(f"/changes/{change.pk}/").content.decode()
    )


def checklist_of(page: str) -> str:
    return re.search(r'<ul class="checklist">.*?</ul>', page, re.S).group(0)


def test_a_checklist_the_viewer_cannot_tick_is_drawn_once_and_shows_a_tick_at_once(
    client, developer, auditor, monkeypatch
):
    from changes.services import checklist_item_set
    from tests.changes.conftest import drawn_from
    from tests.conftest import verified_login

    change = change_create(developer)
    items = list(change.checklist.all())
    drawn = drawn_from(monkeypatch, "changes/_checklist_item.html", "item")
    verified_login(client, auditor)
    first = checklist_of(client.get(f"/changes/{change.pk}/").content.decode())
    assert len(drawn) == len(items)
    assert checklist_of(client.get(f"/changes/{change.pk}/").content.decode()) == first
    assert len(drawn) == len(items)
    item = next(i for i in items if not i.integration and not i.vouched_by)
    with transaction.atomic():
        checklist_item_set(actor=developer, item=item, done=True, evidence="Runbook reviewed")
    page = client.get(f"/changes/{change.pk}/").content.decode()
    assert [i.pk for i in drawn[len(items) :]] == [item.pk]  # only the ticked item drawn anew
    assert f"by {developer.display_name}" in page and "Runbook reviewed" in page
    assert "Mark done" not in page  # an auditor ticks nothing


def test_the_page_shows_the_custody_an_older_deployment_checked_beyond_the_ten_listed(developer):
    """The page lists the latest ten deployments; when none of them checked the chain (each
    refused before it read the repository), the latest that did is read on its own."""
    from datetime import timedelta

    from deployments.change_page import DEPLOYMENTS_SHOWN, change_page
    from deployments.models import Deployment
    from portal import clock

    change = change_create(developer)
    start = clock.now() - timedelta(days=1)
    links = [{"link": "Approved commit", "value": "a" * 40, "verdict": "matches"}]

    def deployment(minutes: int, **fields) -> Deployment:
        at = start + timedelta(minutes=minutes)
        return Deployment.objects.create(
            change=change,
            environment=change.environment,
            started_by=developer,
            created_at=at,
            ended_at=at,
            from_colour="blue",
            to_colour="green",
            plan=[100],
            bake_seconds=0,
            analysis_seconds=0,
            state_since=at,
            next_run_at=at,
            state=Deployment.State.FAILED,
            **fields,
        )

    checked = deployment(0, custody=links, custody_checked_at=start)
    for n in range(1, DEPLOYMENTS_SHOWN + 1):
        deployment(n)
    part = change_page(change=change, user=developer, gates=[])
    assert checked not in part["deployments"]
    assert part["custody"]["deployment"] == checked and part["custody"]["links"] == links
