"""Two browsers at once, for real: threads, each on its own PostgreSQL connection, released by a
barrier together. Whatever the interleaving, one act wins, the other gets a clear 4xx, and the
change and its audit trail agree."""

import threading
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from django.db import connections, transaction

from changes import services
from changes.models import Approval, ChangeRequest
from portal.models import AuditEvent
from tests.conftest import client_for
from tests.factories import (
    UserFactory,
    approved_change,
    change_create,
    otp_code,
    totp_device,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("catalogue")]

ROUNDS = 3


@pytest.fixture(autouse=True)
def _quiet(settings, monkeypatch):
    """No delivery task reaches a worker that may be running; passwords hash fast."""
    from portal.tasks import notification_deliver

    monkeypatch.setattr(notification_deliver, "delay", lambda *args, **kwargs: None)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def race(*acts):
    """Runs the acts in threads that start together; returns each one's result or exception."""
    barrier = threading.Barrier(len(acts))
    results: list = [None] * len(acts)

    def run(index, act):
        try:
            barrier.wait(timeout=10)
            results[index] = act()
        except Exception as error:  # noqa: BLE001 - the test looks at what each thread met
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, act)) for i, act in enumerate(acts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a racing thread is stuck"
    return results


def events(change, action: str):
    return AuditEvent.objects.filter(
        object_type="changes.changerequest", object_id=str(change.pk), action=action
    ).order_by("id")


def submitted(requester):
    change = change_create(requester)
    return services.change_submit(actor=requester, change=change)


def post(person, path: str, body: dict | None = None, *, method: str = "post"):
    """An API call to make later in a thread; the client (and its session) is made now."""
    call = getattr(client_for(person), method)
    return lambda: call(path, body or {}, format="json").status_code


def test_race_same_person_approving_twice_at_once_lands_one_approval(developer, qa):
    for _ in range(ROUNDS):
        change = submitted(developer)
        act = partial(services.change_decide, actor=qa, change=change, decision="approve")

        results = race(act, act)

        landed = [r for r in results if isinstance(r, Approval)]
        refused = [r for r in results if isinstance(r, services.ChangeError)]
        assert (len(landed), len(refused)) == (1, 1), results
        assert refused[0].conflict is True
        assert Approval.objects.filter(change=change).count() == 1
        assert events(change, "change.decision.approve").count() == 1


def approvers(round_: int):
    """Two who, with the third, make the quorum but for the engineering-lead sign-off; and that third.

    New people each round: an OTP code is good once, and the next one is a time step away."""
    alex = UserFactory(username=f"alex{round_}", github_login="alex-owner", capacities=["security"])
    pat = UserFactory(username=f"pat{round_}", capacities=["product"])
    return [(alex, "security"), (pat, "product")], UserFactory(
        username=f"lee{round_}", capacities=["engineering_lead"]
    )


def test_race_two_approvers_completing_the_quorum_at_once_approve_it_once(developer):
    for round_ in range(ROUNDS):
        change = submitted(developer)
        first, lee = approvers(round_)
        kim = UserFactory(username=f"kim{round_}", capacities=["engineering_lead"])
        for person, capacity in first:
            services.change_decide(actor=person, change=change, decision="approve", capacity=capacity)
        path = f"/api/v1/changes/{change.pk}/approvals/"
        last = [  # either one alone completes the quorum
            post(
                person,
                path,
                {"decision": "approve", "capacity": "engineering_lead", "otp": otp_code(totp_device(person))},
            )
            for person in (lee, kim)
        ]

        assert race(*last) == [201, 201]

        change.refresh_from_db()
        assert change.status == "approved"
        assert Approval.objects.filter(change=change, dismissed_at__isnull=True).count() == 4
        assert events(change, "change.approved").count() == 1
        assert events(change, "change.checklist_prove").filter(after__item="approved").count() == 1


def test_race_submit_and_cancel_leave_one_consistent_outcome(developer):
    for _ in range(ROUNDS):
        change = change_create(developer)
        base = f"/api/v1/changes/{change.pk}"

        submit, cancel = race(
            post(developer, f"{base}/submit/"), post(developer, f"{base}/cancel/", {"reason": "No."})
        )

        # Cancel first: the submit is refused. Submit first: a submitted change may still be cancelled.
        assert (submit, cancel) in ((409, 200), (200, 200))
        change.refresh_from_db()
        assert change.status == "cancelled"
        (cancelled,) = events(change, "change.cancelled")
        submits = list(events(change, "change.submitted"))
        assert len(submits) == (1 if submit == 200 else 0)
        assert cancelled.before == {"status": "submitted" if submit == 200 else "draft"}
        assert all(event.id < cancelled.id for event in submits)


def test_race_two_submits_one_wins_the_other_gets_409(developer):
    for _ in range(ROUNDS):
        change = change_create(developer)
        act = post(developer, f"/api/v1/changes/{change.pk}/submit/")

        assert sorted(race(act, post(developer, f"/api/v1/changes/{change.pk}/submit/"))) == [200, 409]

        assert ChangeRequest.objects.get(pk=change.pk).status == "submitted"
        assert events(change, "change.submitted").count() == 1
        assert (
            events(change, "change.checklist_prove").filter(after__item="stakeholders_notified").count() == 1
        )


def test_race_requester_and_release_manager_cancelling_at_once_cancel_once(developer, release_manager):
    for _ in range(ROUNDS):
        change = submitted(developer)
        path = f"/api/v1/changes/{change.pk}/cancel/"

        results = race(
            post(developer, path, {"reason": "Mine."}), post(release_manager, path, {"reason": "Freeze."})
        )

        assert sorted(results) == [200, 409]
        (event,) = events(change, "change.cancelled")
        winner = developer if results[0] == 200 else release_manager
        assert event.actor_id == winner.pk
        assert ChangeRequest.objects.get(pk=change.pk).status == "cancelled"


def test_race_edit_and_last_approval_never_leave_a_stale_approval_standing(developer):
    for round_ in range(ROUNDS):
        change = submitted(developer)
        first, lee = approvers(round_)
        for person, capacity in first:
            services.change_decide(actor=person, change=change, decision="approve", capacity=capacity)
        edit = post(developer, f"/api/v1/changes/{change.pk}/", {"title": "Edited"}, method="patch")
        approve = post(
            lee,
            f"/api/v1/changes/{change.pk}/approvals/",
            {"decision": "approve", "capacity": "engineering_lead", "otp": otp_code(totp_device(lee))},
        )

        results = race(edit, approve)

        assert results == [200, 201]
        change.refresh_from_db()
        assert (change.status, change.revision) == ("submitted", 2)
        standing = Approval.objects.filter(change=change, dismissed_at__isnull=True)
        assert all(a.revision == 2 for a in standing)
        assert change.checklist.get(key="approved").done is False


def test_race_two_changes_scheduled_into_one_slot_at_once_land_one(developer, paris):
    for round_ in range(ROUNDS):
        first = approved_change(developer, paris, title=f"First {round_}")
        second = approved_change(developer, paris, title=f"Second {round_}")
        slot = {"window_start": f"2027-03-0{2 + round_}T02:00", "window_end": f"2027-03-0{2 + round_}T03:00"}

        results = race(
            post(developer, f"/api/v1/changes/{first.pk}/schedule/", slot),
            post(developer, f"/api/v1/changes/{second.pk}/schedule/", slot),
        )

        assert sorted(results) == [200, 409], results
        held = ChangeRequest.objects.filter(pk__in=[first.pk, second.pk], status="scheduled")
        assert held.count() == 1
        assert (
            AuditEvent.objects.filter(
                object_id__in=[str(first.pk), str(second.pk)], action="change.scheduled"
            ).count()
            == 1
        )


def test_scheduling_waits_for_another_scheduling_on_the_same_environment(developer, paris):
    """Deterministic: while one scheduling holds the environment, the next waits for it to
    commit and then sees its slot taken."""
    first, second = approved_change(developer, paris), approved_change(developer, paris)
    start = datetime(2027, 3, 2, 1, tzinfo=UTC)
    end = start + timedelta(hours=1)
    holding, release, outcome = threading.Event(), threading.Event(), {}

    def hold():
        try:
            with transaction.atomic():
                services.change_schedule(actor=developer, change=first, start=start, end=end)
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    def follow():
        try:
            outcome["result"] = services.change_schedule(actor=developer, change=second, start=start, end=end)
        except services.ChangeError as error:
            outcome["result"] = error
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    follower = threading.Thread(target=follow)
    follower.start()
    follower.join(0.5)
    assert follower.is_alive(), "the second scheduling did not wait for the first"
    release.set()
    holder.join(10)
    follower.join(10)
    assert isinstance(outcome["result"], services.ChangeError) and outcome["result"].conflict
    assert "is scheduled then" in str(outcome["result"])
