from datetime import timedelta

import pytest
from django.db import transaction

from changes.services import change_remind, change_submit
from portal import clock
from portal.models import AuditEvent, Notification, User
from tests.factories import UserFactory, change_create


@pytest.fixture
def submitted(developer):
    UserFactory(username="alex", email="alex@example.com", github_login="alex-owner")
    UserFactory(username="sam", email="sam@example.com", capacities=["security"])
    UserFactory(username="pat", email="pat@example.com", capacities=["product"])
    UserFactory(username="lee", email="lee@example.com", capacities=["engineering_lead"])
    UserFactory(username="bystander", email="by@example.com")
    change = change_create(developer)
    with transaction.atomic():
        change_submit(actor=developer, change=change)
    return change


@pytest.mark.django_db
def test_reminders_wait_for_the_policys_time_then_go_to_pending_approvers(submitted):
    assert change_remind(change=submitted) == []
    clock.shift(timedelta(hours=24, minutes=1))
    # No approvals yet: everyone who may approve is asked, the sign-off holders and code owner among them.
    assert sorted(change_remind(change=submitted)) == ["alex", "bystander", "lee", "pat", "sam"]
    subjects = set(
        Notification.objects.filter(subject__startswith="Waiting").values_list("recipient", flat=True)
    )
    assert subjects == {
        "alex@example.com",
        "by@example.com",
        "sam@example.com",
        "pat@example.com",
        "lee@example.com",
    }
    assert AuditEvent.objects.filter(action="change.remind").count() == 1
    # Not again until another reminder period has passed.
    assert change_remind(change=submitted) == []
    clock.shift(timedelta(hours=24, minutes=1))
    assert change_remind(change=submitted) != []


@pytest.mark.django_db
def test_reminders_skip_who_already_decided(submitted):
    from changes.services import change_decide

    sam = User.objects.get(username="sam")
    with transaction.atomic():
        change_decide(actor=sam, change=submitted, decision="approve", capacity="security")
    clock.shift(timedelta(hours=25))
    assert "sam" not in change_remind(change=submitted)


@pytest.mark.django_db
def test_no_reminder_and_no_audit_event_when_nobody_is_pending(developer):
    change = change_create(developer)  # nobody else exists who may approve
    with transaction.atomic():
        change_submit(actor=developer, change=change)
    clock.shift(timedelta(hours=25))
    assert change_remind(change=change) == []
    assert not AuditEvent.objects.filter(action="change.remind").exists()
