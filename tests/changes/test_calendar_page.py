"""The change calendar page: in the viewer's time zone, with its forms' refusals beside the fields."""

import re

import pytest

from changes.models import Freeze
from portal.models import AuditEvent
from tests.conftest import verified_login
from tests.factories import UserFactory, approved_change, otp_code, totp_device

pytestmark = pytest.mark.django_db


def day_cell(html: str, day: str) -> str:
    match = re.search(
        rf'data-day="{day}">(.*?)</div>\s*(?=<div class="calendar-day|</div>\s*\n\s*<div class="grid")',
        html,
        re.S,
    )
    assert match, f"{day} is not on the page"
    return match.group(1)


def test_a_viewer_in_new_york_sees_the_paris_window_on_their_own_clock(client, paris):
    viewer = UserFactory(username="nyc", time_zone="America/New_York")
    verified_login(client, viewer)
    html = client.get("/calendar/", {"environment": "paris", "date": "2027-03-02"}).content.decode()
    # Tuesday 02:00-05:00 in Paris (CET) is Monday 20:00-23:00 in New York (EST).
    assert "20:00–23:00" in day_cell(html, "2027-03-01")
    assert "Times in your zone, America/New_York" in html


def test_a_scheduled_change_and_a_freeze_show_on_their_days(client, busy_week):
    change = busy_week
    paris_viewer = UserFactory(username="pv", time_zone="Europe/Paris")
    verified_login(client, paris_viewer)
    html = client.get("/calendar/", {"environment": "paris", "date": "2027-03-02"}).content.decode()
    assert f"{change.number} Faster render queue" in day_cell(html, "2027-03-02")
    assert "13:00–…" in day_cell(html, "2027-03-03") and "Freeze: Launch" in day_cell(html, "2027-03-03")
    assert "all day" not in day_cell(html, "2027-03-03") and "Freeze" not in day_cell(html, "2027-03-06")
    assert "all day" in day_cell(html, "2027-03-04")
    assert "…–13:00" in day_cell(html, "2027-03-05")


def test_a_freeze_from_someone_who_may_not_keep_them_is_refused(client, developer, paris):
    verified_login(client, developer)
    response = client.post(
        "/calendar/?environment=paris",
        {
            "act": "freeze",
            "freeze-starts_at": "2027-03-03T00:00",
            "freeze-ends_at": "2027-03-04T00:00",
            "freeze-reason": "Mine",
        },
    )
    assert response.status_code == 403 and "freeze.manage" in response.content.decode()
    assert not Freeze.objects.exists()


FREEZE = {
    "act": "freeze",
    "freeze-starts_at": "2027-03-03T00:00",
    "freeze-ends_at": "2027-03-04T00:00",
    "freeze-reason": "Launch",
}


@pytest.mark.parametrize("code", ["", "000000"])
def test_a_freeze_without_a_current_code_is_refused_beside_the_code(client, release_manager, paris, code):
    verified_login(client, release_manager)
    events = AuditEvent.objects.count()

    response = client.post("/calendar/?environment=paris", {**FREEZE, "freeze-otp": code})

    assert response.status_code == 400
    beside_the_code = re.search(
        r'<div class="field has-error">\s*<label for="id_freeze-otp">Code</label>.*?'
        r'<small class="error" role="alert">([^<]*)</small>',
        response.content.decode(),
        re.S,
    )
    assert beside_the_code, "the refusal is not beside the code"
    assert beside_the_code.group(1) == (
        "This field is required."
        if not code
        else "That code is not valid or was already used. Enter the current code."
    )
    assert not Freeze.objects.exists()
    # Nothing is recorded as done; a wrong code is recorded as the person's failed code.
    assert AuditEvent.objects.exclude(action="auth.code_failed").count() == events


def test_a_freeze_with_a_current_code_is_made_and_audited(client, release_manager, paris):
    verified_login(client, release_manager)

    response = client.post(
        "/calendar/?environment=paris", {**FREEZE, "freeze-otp": otp_code(totp_device(release_manager))}
    )

    assert response.status_code == 302
    freeze = Freeze.objects.get()
    assert (freeze.environment, freeze.reason, freeze.created_by) == (paris, "Launch", release_manager)
    event = AuditEvent.objects.get(action="freeze.create")
    assert (event.actor_id, event.object_id) == (release_manager.pk, str(freeze.pk))


def test_a_time_the_viewers_clock_skips_is_refused_beside_the_field(client, developer, paris):
    change = approved_change(developer, paris)
    developer.time_zone = "Europe/Paris"
    developer.save(update_fields=["time_zone"])
    verified_login(client, developer)
    response = client.post(
        "/calendar/?environment=paris",
        {
            "act": "schedule",
            "schedule-change": change.pk,
            "schedule-start": "2027-03-28T02:30",
            "schedule-end": "2027-03-28T04:00",
        },
    )
    assert response.status_code == 400
    assert "2027-03-28 02:30 does not exist in Europe/Paris" in response.content.decode()
    change.refresh_from_db()
    assert change.status == "approved"
