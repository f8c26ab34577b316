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
    assert mine["decide"] == {"allowed": False, "reason": "You filed this change: someone else approves it."}
    theirs = client_for(qa).get(f"/api/v1/changes/{change.pk}/").json()["actions"]
    assert theirs == {
        "decide": {
            "allowed": False,
            "reason": "It is draft: decisions are taken while it is submitted or approved.",
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
