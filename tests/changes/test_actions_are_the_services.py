"""For every status a change can have and every kind of person, the acts the change's page offers
are exactly those its services accept: the page never offers what the service refuses, and never
hides what it would take. Each act is tried for real through its service in a savepoint that is
rolled back, so one change serves every try."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from changes import services
from changes.choices import ChangeStatus
from changes.models import ChangeRequest
from changes.selectors import ACTS, change_actions
from tests.factories import UserFactory, approved_change

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
# A slot the Paris window allows (Tuesday 02:00-03:00), free of freezes and other changes.
SLOT = (datetime(2027, 3, 2, 2, tzinfo=PARIS), datetime(2027, 3, 2, 3, tzinfo=PARIS))

TRIES = {
    "edit": lambda actor, change: services.change_update(
        actor=actor, change=change, data={"title": "Faster render queue, edited"}
    ),
    "submit": lambda actor, change: services.change_submit(actor=actor, change=change),
    "decide": lambda actor, change: services.change_decide(
        actor=actor, change=change, decision="reject", comment="Not this week."
    ),
    "cancel": lambda actor, change: services.change_cancel(actor=actor, change=change, reason="Not needed."),
    "schedule": lambda actor, change: services.change_schedule(
        actor=actor, change=change, start=SLOT[0], end=SLOT[1]
    ),
    "unschedule": lambda actor, change: services.change_unschedule(actor=actor, change=change),
}


class RolledBack(Exception):
    pass


def accepted(act: str, actor, change: ChangeRequest) -> bool:
    try:
        with transaction.atomic():
            TRIES[act](actor, ChangeRequest.objects.get(pk=change.pk))
            raise RolledBack
    except RolledBack:
        return True
    except (ValidationError, PermissionDenied):
        return False


def in_status(change: ChangeRequest, status: str) -> ChangeRequest:
    """The approved change put in `status` as its life would leave it there (a scheduled one holds
    its slot; a sent-back one has the objection that sent it back)."""
    fields = {"status": status, "scheduled_start": None, "scheduled_end": None}
    if status in (ChangeStatus.SCHEDULED, ChangeStatus.DEPLOYING, ChangeStatus.VERIFYING):
        fields["scheduled_start"], fields["scheduled_end"] = SLOT
    ChangeRequest.objects.filter(pk=change.pk).update(**fields)
    if status in (ChangeStatus.CHANGES_REQUESTED, ChangeStatus.REJECTED):
        objection = "request_changes" if status == ChangeStatus.CHANGES_REQUESTED else "reject"
        change.approvals.update(decision=objection)
    return ChangeRequest.objects.get(pk=change.pk)


@pytest.mark.parametrize("status", ChangeStatus.values)
def test_the_page_offers_exactly_what_the_services_accept(
    status, paris, developer, qa, release_manager, sre, auditor, admin
):
    change = in_status(approved_change(developer, paris), status)
    people = {
        "requester": developer,
        "another developer": UserFactory(role="developer"),
        "qa": qa,
        "release manager": release_manager,
        "sre": sre,
        "auditor": auditor,
        "admin": admin,
    }
    assert [act for act, _predicate, _says in ACTS] == list(TRIES)
    differ = []
    for who, person in people.items():
        actions = change_actions(person, change)
        for act in TRIES:
            offered = act in actions and actions[act] is None
            if offered != accepted(act, person, change):
                differ.append(f"{who} {act}: page {'offers' if offered else 'refuses'} it")
    assert differ == []


def test_a_refusal_reads_the_same_on_the_page_and_from_the_service(paris, developer):
    change = in_status(approved_change(developer, paris), ChangeStatus.CANCELLED)
    said = change_actions(developer, change)["edit"]
    with pytest.raises(ValidationError) as refused:
        TRIES["edit"](developer, change)
    assert said == refused.value.messages[0] == f"{change.number} is cancelled and can no longer be edited."
