"""Scheduling a change: inside a window on the environment's own clock, outside freezes, clear of
other changes, never in the past; each refusal says why and suggests the next free slot."""

from datetime import UTC, datetime, time

import pytest

from changes import services
from changes.models import DeploymentWindow, Freeze
from portal.models import AuditEvent, Notification
from tests.conftest import client_for
from tests.factories import approved_change, change_create, otp_code, totp_device

pytestmark = pytest.mark.django_db


def schedule(person, change, start: str, end: str):
    return client_for(person).post(
        f"/api/v1/changes/{change.pk}/schedule/", {"window_start": start, "window_end": end}, format="json"
    )


def with_code(person, body: dict | None = None) -> dict:
    """The body of a window's or a freeze's addition or removal, with the person's current code."""
    return {**(body or {}), "otp": otp_code(totp_device(person))}


def utc(*args) -> str:
    """A UTC time as the API writes it."""
    return datetime(*args, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def test_schedule_puts_an_approved_change_in_a_window_read_on_the_environments_clock(developer, paris):
    change = approved_change(developer, paris, stakeholder_channels=["#releases"])
    response = schedule(developer, change, "2027-03-02T02:00", "2027-03-02T03:00")  # a Tuesday, CET
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["scheduled_start"] == utc(2027, 3, 2, 1) and body["scheduled_end"] == utc(2027, 3, 2, 2)
    event = AuditEvent.objects.get(object_id=str(change.pk), action="change.scheduled")
    assert event.after["scheduled_start"].startswith("2027-03-02T01:00")
    assert Notification.objects.filter(recipient="#releases", subject__contains="scheduled").exists()
    window_item = next(i for i in body["checklist"] if i["key"] == "window_scheduled")
    assert window_item["done"] and window_item["evidence"] == "Scheduled for Tue 2027-03-02 02:00-03:00 CET"


def test_a_slot_outside_the_windows_is_refused_with_the_next_window_suggested(developer, paris):
    change = approved_change(developer, paris)
    response = schedule(developer, change, "2027-03-01T10:00", "2027-03-01T11:00")  # a Monday
    assert response.status_code == 409
    body = response.json()
    assert "outside the deployment windows" in body["detail"] and "Tue" in body["detail"]
    assert body["next_slot"] == {"start": utc(2027, 3, 2, 1), "end": utc(2027, 3, 2, 2)}
    change.refresh_from_db()
    assert change.status == "approved" and change.scheduled_start is None


def test_a_slot_in_a_freeze_is_refused_and_the_first_window_after_it_suggested(
    developer, release_manager, paris
):
    freeze = client_for(release_manager).post(
        "/api/v1/freezes/",
        with_code(
            release_manager,
            {
                "environment": "paris",
                "starts_at": utc(2027, 3, 1),
                "ends_at": utc(2027, 3, 5),
                "reason": "Launch week",
            },
        ),
        format="json",
    )
    assert freeze.status_code == 201, freeze.json()
    change = approved_change(developer, paris)
    response = schedule(developer, change, "2027-03-03T02:00", "2027-03-03T04:00")
    assert response.status_code == 409
    assert "freeze (Launch week" in response.json()["detail"]
    assert response.json()["next_slot"] == {"start": utc(2027, 3, 9, 1), "end": utc(2027, 3, 9, 3)}


def test_a_slot_another_change_holds_is_refused_and_the_time_after_it_suggested(developer, paris):
    first, second = (
        approved_change(developer, paris, title="First"),
        approved_change(developer, paris, title="Second"),
    )
    assert schedule(developer, first, "2027-03-02T02:00", "2027-03-02T03:00").status_code == 200
    response = schedule(developer, second, "2027-03-02T02:30", "2027-03-02T03:30")
    assert response.status_code == 409
    assert f"{first.number} (First) is scheduled then" in response.json()["detail"]
    assert response.json()["next_slot"] == {"start": utc(2027, 3, 2, 2), "end": utc(2027, 3, 2, 3)}


def test_a_slot_in_the_past_is_refused_and_the_next_one_from_now_suggested(developer, paris):
    change = approved_change(developer, paris)
    response = schedule(developer, change, "2020-03-03T02:00", "2020-03-03T03:00")
    assert response.status_code == 409
    body = response.json()
    assert body["detail"].startswith("That slot is in the past.")
    suggested = datetime.fromisoformat(body["next_slot"]["start"])
    assert suggested > datetime.now(UTC) and suggested.astimezone(paris_zone()).weekday() in (1, 2, 3)


def paris_zone():
    import zoneinfo

    return zoneinfo.ZoneInfo("Europe/Paris")


def test_a_slot_that_ends_before_it_starts_is_a_400_naming_window_end(developer, paris):
    change = approved_change(developer, paris)
    response = schedule(developer, change, "2027-03-02T03:00", "2027-03-02T02:00")
    assert response.status_code == 400 and response.json()["detail"].startswith("window_end: ")


def test_a_local_time_the_clocks_skip_is_a_400_naming_the_field(developer, paris):
    change = approved_change(developer, paris)
    response = schedule(developer, change, "2027-03-28T02:30", "2027-03-28T03:30")  # spring forward
    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        "window_start: 2027-03-28 02:30 does not exist in Europe/Paris"
    )


def test_a_local_time_the_clocks_show_twice_is_a_400_asking_for_the_offset(developer, paris):
    change = approved_change(developer, paris)
    response = schedule(developer, change, "2027-10-31T01:00", "2027-10-31T02:30")  # fall back
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("window_end: 2027-10-31 02:30 happens twice in Europe/Paris")
    assert "2027-10-31T02:30:00+02:00" in detail and "2027-10-31T02:30:00+01:00" in detail


def test_a_window_on_the_spring_forward_night_is_an_hour_shorter(developer, release_manager, paris):
    services.window_create(
        actor=release_manager, environment=paris, weekdays=[6], start_time=time(1), end_time=time(4)
    )
    change = approved_change(developer, paris)
    # Sunday 28 March 2027, 01:00 CET to 04:00 CEST: two real hours, not three.
    refused = schedule(developer, change, utc(2027, 3, 28, 0), utc(2027, 3, 28, 3))
    assert refused.status_code == 409 and "outside the deployment windows" in refused.json()["detail"]
    # The next three free hours: Tuesday's window (02:00-05:00 CEST is 00:00-03:00 UTC).
    assert refused.json()["next_slot"] == {"start": utc(2027, 3, 30, 0), "end": utc(2027, 3, 30, 3)}
    fits = schedule(developer, change, "2027-03-28T03:00+02:00", "2027-03-28T04:00+02:00")
    assert fits.status_code == 200, fits.json()
    assert fits.json()["scheduled_start"] == utc(2027, 3, 28, 1)


def test_a_window_on_the_fall_back_night_is_an_hour_longer(developer, release_manager, paris):
    services.window_create(
        actor=release_manager, environment=paris, weekdays=[6], start_time=time(1), end_time=time(4)
    )
    change = approved_change(developer, paris)
    # Sunday 31 October 2027, 01:00 CEST (23:00 UTC) to 04:00 CET (03:00 UTC): four real hours.
    response = schedule(developer, change, utc(2027, 10, 30, 23), utc(2027, 10, 31, 3))
    assert response.status_code == 200, response.json()


def test_rescheduling_and_unscheduling_are_audited_and_told(developer, paris):
    change = approved_change(developer, paris, stakeholder_channels=["#releases"])
    schedule(developer, change, "2027-03-02T02:00", "2027-03-02T03:00")
    moved = schedule(developer, change, "2027-03-03T02:00", "2027-03-03T03:00")
    assert moved.status_code == 200 and moved.json()["scheduled_start"] == utc(2027, 3, 3, 1)
    moved_item = next(i for i in moved.json()["checklist"] if i["key"] == "window_scheduled")
    assert moved_item["evidence"] == "Scheduled for Wed 2027-03-03 02:00-03:00 CET"
    event = AuditEvent.objects.get(object_id=str(change.pk), action="change.rescheduled")
    assert event.before["scheduled_start"].startswith("2027-03-02T01:00")
    assert event.after["scheduled_start"].startswith("2027-03-03T01:00")
    unscheduled = client_for(developer).delete(f"/api/v1/changes/{change.pk}/schedule/")
    assert unscheduled.status_code == 200
    assert unscheduled.json()["status"] == "approved" and unscheduled.json()["scheduled_start"] is None
    assert not next(i for i in unscheduled.json()["checklist"] if i["key"] == "window_scheduled")["done"]
    assert AuditEvent.objects.filter(object_id=str(change.pk), action="change.approved").count() == 2
    subjects = set(Notification.objects.filter(recipient="#releases").values_list("subject", flat=True))
    assert {
        f"{change.number} moved to Wed 2027-03-03 02:00-03:00 CET",
        f"{change.number} unscheduled",
    } <= subjects


def test_only_the_requester_or_a_release_manager_schedules(developer, release_manager, qa, paris):
    change = approved_change(developer, paris)
    refused = schedule(qa, change, "2027-03-02T02:00", "2027-03-02T03:00")
    assert refused.status_code == 403 and "requester or a release manager" in refused.json()["detail"]
    assert schedule(release_manager, change, "2027-03-02T02:00", "2027-03-02T03:00").status_code == 200


def test_a_change_that_is_not_approved_is_not_scheduled(developer, paris):
    change = change_create(developer, environment=paris)
    response = schedule(developer, change, "2027-03-02T02:00", "2027-03-02T03:00")
    assert response.status_code == 409 and "only approved changes are scheduled" in response.json()["detail"]


def test_an_edit_after_scheduling_gives_the_slot_up(developer, paris):
    change = approved_change(developer, paris)
    schedule(developer, change, "2027-03-02T02:00", "2027-03-02T03:00")
    response = client_for(developer).patch(f"/api/v1/changes/{change.pk}/", {"title": "New"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "submitted"
    assert response.json()["scheduled_start"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"weekdays": [1], "start_time": "05:00", "end_time": "02:00"}, "end_time"),
        ({"weekdays": [7], "start_time": "02:00", "end_time": "05:00"}, "weekdays"),
        ({"weekdays": [], "start_time": "02:00", "end_time": "05:00"}, "weekdays"),
        ({"weekdays": [1], "start_time": "2am", "end_time": "05:00"}, "start_time"),
    ],
)
def test_a_bad_window_is_a_400_naming_the_field(release_manager, paris, body, field):
    response = client_for(release_manager).post(
        "/api/v1/windows/", with_code(release_manager, {"environment": "paris", **body}), format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith(field)


def test_windows_and_freezes_are_kept_by_release_managers_only(developer, release_manager, paris):
    body = {"environment": "paris", "weekdays": [4], "start_time": "02:00", "end_time": "03:00"}
    refused = client_for(developer).post("/api/v1/windows/", with_code(developer, body), format="json")
    assert refused.status_code == 403 and "window.manage" in refused.json()["detail"]
    created = client_for(release_manager).post(
        "/api/v1/windows/", with_code(release_manager, body), format="json"
    )
    assert created.status_code == 201 and created.json()["time_zone"] == "Europe/Paris"
    assert "otp" not in created.json()
    window_id = created.json()["id"]
    assert AuditEvent.objects.filter(action="window.create", object_id=str(window_id)).exists()
    listed = client_for(developer).get("/api/v1/windows/", {"environment": "paris"}).json()
    assert [w["weekdays"] for w in listed] == [[1, 2, 3], [4]]
    url = f"/api/v1/windows/{window_id}/"
    assert client_for(developer).delete(url, with_code(developer), format="json").status_code == 403
    assert (
        client_for(release_manager).delete(url, with_code(release_manager), format="json").status_code == 204
    )
    assert AuditEvent.objects.filter(action="window.delete", object_id=str(window_id)).exists()


# Windows and freezes decide when production may change: each addition and removal takes a code.

NEW_WINDOW = {"environment": "paris", "weekdays": [4], "start_time": "02:00", "end_time": "03:00"}
NEW_FREEZE = {
    "environment": "paris",
    "starts_at": utc(2027, 12, 20),
    "ends_at": utc(2028, 1, 2),
    "reason": "Holidays",
}


@pytest.fixture
def kept(release_manager, paris):
    """Paris's window and a freeze there, to remove."""
    freeze = services.freeze_create(
        actor=release_manager,
        environment=paris,
        reason="Launch",
        starts_at=datetime(2027, 3, 3, tzinfo=UTC),
        ends_at=datetime(2027, 3, 5, tzinfo=UTC),
    )
    return {"window": paris.windows.get(), "freeze": freeze}


CALENDAR_ACTS = {
    # act: method, address, body, the model, the audit action, the answer with a good code
    "window_create": ("post", "/api/v1/windows/", NEW_WINDOW, DeploymentWindow, "window.create", 201),
    "window_delete": ("delete", "/api/v1/windows/{window}/", {}, DeploymentWindow, "window.delete", 204),
    "freeze_create": ("post", "/api/v1/freezes/", NEW_FREEZE, Freeze, "freeze.create", 201),
    "freeze_delete": ("delete", "/api/v1/freezes/{freeze}/", {}, Freeze, "freeze.delete", 204),
}


def calendar_act(act: str, kept):
    method, address, body, model, action, accepted = CALENDAR_ACTS[act]
    url = address.format(window=kept["window"].pk, freeze=kept["freeze"].pk)
    return method, url, body, model, action, accepted


@pytest.mark.parametrize("act", list(CALENDAR_ACTS))
@pytest.mark.parametrize("code", ["missing", "wrong"])
def test_a_window_or_freeze_is_neither_added_nor_removed_without_a_current_code(
    release_manager, kept, act, code
):
    method, url, body, model, _action, _accepted = calendar_act(act, kept)
    if code == "wrong":
        good = otp_code(totp_device(release_manager))
        body = {**body, "otp": f"{(int(good) + 500_000) % 1_000_000:06d}"}
    rows, events = model.objects.count(), AuditEvent.objects.count()

    response = getattr(client_for(release_manager), method)(url, body, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == (
        "This action needs a current code from your authenticator app in the `otp` field."
        if code == "missing"
        else "That code is not valid or was already used. Enter the current code."
    )
    assert model.objects.count() == rows
    # Nothing is recorded as done; a wrong code is recorded as the caller's failed code.
    assert AuditEvent.objects.exclude(action="auth.code_failed").count() == events
    assert AuditEvent.objects.filter(action="auth.code_failed").count() == (code == "wrong")


@pytest.mark.parametrize("act", list(CALENDAR_ACTS))
def test_a_window_or_freeze_is_added_or_removed_with_a_current_code_and_audited(release_manager, kept, act):
    method, url, body, model, action, accepted = calendar_act(act, kept)
    rows, events = model.objects.count(), AuditEvent.objects.count()

    response = getattr(client_for(release_manager), method)(
        url, with_code(release_manager, body), format="json"
    )

    assert response.status_code == accepted, response.content
    assert model.objects.count() == rows + (1 if accepted == 201 else -1)
    assert AuditEvent.objects.count() == events + 1
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.actor_id) == (action, release_manager.pk)
    entry = response.json()["id"] if accepted == 201 else kept[act.split("_")[0]].pk
    assert event.object_id == str(entry)


def test_overlapping_freezes_are_refused_naming_the_one_in_place(release_manager, paris):
    api = client_for(release_manager)
    first = {
        "environment": "paris",
        "starts_at": utc(2027, 12, 20),
        "ends_at": utc(2028, 1, 2),
        "reason": "Holidays",
    }
    assert api.post("/api/v1/freezes/", with_code(release_manager, first), format="json").status_code == 201
    second = {**first, "starts_at": utc(2027, 12, 31), "ends_at": utc(2028, 1, 5), "reason": "New year"}
    response = api.post("/api/v1/freezes/", with_code(release_manager, second), format="json")
    assert (
        response.status_code == 409 and "(Holidays): change that freeze instead" in response.json()["detail"]
    )


@pytest.mark.parametrize(
    ("starts", "ends", "reason", "field"),
    [
        ((2027, 12, 20), (2027, 12, 19), "Holidays", "ends_at"),
        ((2020, 1, 1), (2020, 1, 2), "Long ago", "ends_at"),
        ((2027, 12, 20), (2027, 12, 21), "  ", "reason"),
    ],
)
def test_a_bad_freeze_is_a_400_naming_the_field(release_manager, paris, starts, ends, reason, field):
    body = {"environment": "paris", "starts_at": utc(*starts), "ends_at": utc(*ends), "reason": reason}
    response = client_for(release_manager).post(
        "/api/v1/freezes/", with_code(release_manager, body), format="json"
    )
    assert response.status_code == 400 and response.json()["detail"].startswith(f"{field}: ")


def test_a_new_freeze_names_the_changes_scheduled_inside_it_and_tells_them(developer, release_manager, paris):
    change = approved_change(developer, paris, stakeholder_channels=["#releases"])
    schedule(developer, change, "2027-03-02T02:00", "2027-03-02T03:00")
    body = {
        "environment": "paris",
        "starts_at": utc(2027, 3, 1),
        "ends_at": utc(2027, 3, 3),
        "reason": "Launch",
    }
    response = client_for(release_manager).post(
        "/api/v1/freezes/", with_code(release_manager, body), format="json"
    )
    assert response.status_code == 201 and response.json()["scheduled_inside"] == [change.number]
    assert Notification.objects.filter(
        recipient="#releases", subject=f"{change.number} is scheduled inside a freeze"
    ).exists()


def test_the_change_page_shows_the_slot_and_lets_the_requester_give_it_up(client, developer, qa, paris):
    from tests.conftest import verified_login

    change = approved_change(developer, paris)
    theirs = client_for(qa).get(f"/api/v1/changes/{change.pk}/").json()["actions"]
    assert "schedule" not in theirs  # neither the requester nor a release manager
    verified_login(client, developer)
    page = client.get(f"/changes/{change.pk}/").content.decode()
    assert "Schedule in the calendar" in page and "/calendar/?environment=paris" in page
    schedule(developer, change, "2027-03-02T02:00", "2027-03-02T03:00")
    page = client.get(f"/changes/{change.pk}/").content.decode()
    assert "Scheduled for <strong>Tue 2 Mar, 01:00–02:00 UTC</strong>" in page  # the viewer's zone, UTC
    assert "Move in the calendar" in page and "Give the slot up" in page
    response = client.post(f"/changes/{change.pk}/unschedule/")
    assert response.status_code == 302
    change.refresh_from_db()
    assert change.status == "approved" and change.scheduled_start is None
