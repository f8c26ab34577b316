"""The change calendar in Chromium: a release manager schedules a change, freezes the
environment with a code, sees the freeze refuse another change with the next free slot, and takes
that slot."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from portal import clock
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import UserFactory, approved_change, otp_code, totp_device

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


def test_schedule_in_the_calendar_and_see_a_freeze_refuse_another(live_server, page, paris):
    import zoneinfo

    manager = UserFactory(
        username="rita", first_name="Rita", role="release_manager", time_zone="Europe/Paris"
    )
    dana = UserFactory(username="dana", first_name="Dana")
    first = approved_change(dana, paris, title="Faster render queue")
    second = approved_change(dana, paris, title="Rotate keys")
    today = clock.now().astimezone(zoneinfo.ZoneInfo("Europe/Paris")).date()
    tuesday = today + timedelta(days=7 + (1 - today.weekday()) % 7)  # a Tuesday at least a week away
    wednesday, friday = tuesday + timedelta(days=1), tuesday + timedelta(days=3)
    next_tuesday = tuesday + timedelta(days=7)

    sign_in(page, live_server, manager)
    page.goto(f"{live_server.url}/calendar/?environment=paris&date={tuesday}")
    expect(page.locator(f'[data-day="{tuesday}"] .calendar-entry.window')).to_contain_text("02:00–05:00")

    schedule = page.locator("#schedule")
    schedule.get_by_label("Change").select_option(label=f"{first.number} Faster render queue")
    schedule.get_by_label("From").fill(f"{tuesday}T02:00")
    schedule.get_by_label("Until").fill(f"{tuesday}T03:00")
    schedule.get_by_role("button", name="Schedule").click()
    expect(page.locator(".messages")).to_contain_text(f"{first.number} is scheduled.")
    expect(page.locator(f'[data-day="{tuesday}"] .calendar-entry.change')).to_contain_text(
        "Faster render queue"
    )

    freeze = page.locator("#freeze")
    freeze.get_by_label("Frozen from").fill(f"{wednesday}T00:00")
    freeze.get_by_label("Until").fill(f"{friday}T00:00")
    freeze.get_by_label("Reason").fill("Launch of the new studio")
    freeze.get_by_label("Code").fill(otp_code(totp_device(manager)))
    freeze.get_by_role("button", name="Freeze").click()
    expect(page.locator(".messages")).to_contain_text("Paris is frozen.")
    expect(page.locator(f'[data-day="{wednesday}"] .calendar-entry.freeze')).to_contain_text("Launch")

    schedule.get_by_label("Change").select_option(label=f"{second.number} Rotate keys")
    schedule.get_by_label("From").fill(f"{wednesday}T02:00")
    schedule.get_by_label("Until").fill(f"{wednesday}T03:00")
    schedule.get_by_role("button", name="Schedule").click()
    expect(schedule.locator(".form-errors")).to_contain_text(
        "That slot falls in a freeze (Launch of the new studio"
    )
    expect(schedule.locator(".suggestion")).to_contain_text(
        f"{next_tuesday:%a} {next_tuesday.day} {next_tuesday:%b} 02:00–03:00"
    )
    screenshot(page, "calendar-freeze-refused.png")
    second.refresh_from_db()
    assert second.status == "approved"

    schedule.get_by_role("button", name="Take it").click()
    expect(page.locator(".messages")).to_contain_text(f"{second.number} is scheduled.")
    second.refresh_from_db()
    assert second.status == "scheduled"
    assert second.scheduled_start.astimezone(zoneinfo.ZoneInfo("Europe/Paris")).date() == next_tuesday
    page.goto(f"{live_server.url}/changes/{second.pk}/")
    expect(page.locator(".scheduled")).to_contain_text(
        f"{next_tuesday:%a} {next_tuesday.day} {next_tuesday:%b}, 02:00–03:00"
    )
    screenshot(page, "change-scheduled.png")
    page.goto(f"{live_server.url}/calendar/?environment=paris&view=month&date={tuesday}")
    screenshot(page, "calendar-month.png")
    assert page.errors == []
