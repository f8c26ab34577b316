"""The iCalendar feed of an environment: windows recurring on its own clock, freezes, scheduled
changes; reached by a signed address of the viewer's own, which a new password revokes."""

import re
from datetime import UTC, datetime

import icalendar
import pytest

from tests.conftest import verified_login
from tests.factories import EnvironmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def feed_address(client, user, environment: str = "paris") -> str:
    verified_login(client, user)
    html = client.get("/calendar/", {"environment": environment}).content.decode()
    client.logout()
    address = re.search(
        r'href="http://testserver(/calendar/[^"]+\.ics\?key=[^"]+)" class="feed"', html
    ).group(1)
    return address.replace("&amp;", "&")


def test_the_feed_lists_windows_freezes_and_scheduled_changes(client, developer, busy_week):
    change = busy_week
    response = client.get(feed_address(client, developer))  # no session: the calendar app's request
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    feed = icalendar.Calendar.from_ical(response.content)
    events = {str(e["summary"]): e for e in feed.walk("VEVENT")}
    window = events["Deployment window: Paris"]
    assert window["rrule"]["BYDAY"] == ["TU", "WE", "TH"]
    assert window.decoded("dtstart").tzinfo.key == "Europe/Paris"
    assert window.decoded("dtstart").hour == 2 and window.decoded("dtend").hour == 5
    assert [tz["tzid"] for tz in feed.walk("VTIMEZONE")] == ["Europe/Paris"]
    scheduled = events[f"{change.number} Faster render queue"]
    assert scheduled.decoded("dtstart") == datetime(2027, 3, 2, 1, tzinfo=UTC)
    assert str(scheduled["url"]).endswith(f"/changes/{change.pk}/")
    assert events["Freeze of Paris: Launch"].decoded("dtend") == datetime(2027, 3, 5, 12, tzinfo=UTC)


def test_a_tampered_key_is_refused(client, developer, paris):
    address = feed_address(client, developer)
    assert client.get(address[:-3] + "abc").status_code == 403
    assert client.get("/calendar/paris.ics").status_code == 403


def test_a_key_opens_only_its_own_environment(client, developer, paris):
    EnvironmentFactory(name="staging", display_name="Staging")
    address = feed_address(client, developer)
    assert client.get(address.replace("/paris.ics", "/staging.ics")).status_code == 403


def test_a_new_password_or_a_deactivated_account_stops_the_address(client, paris):
    person = UserFactory(username="feeder")
    address = feed_address(client, person)
    assert client.get(address).status_code == 200
    person.set_password("a-completely-new-passphrase")
    person.save()
    assert client.get(address).status_code == 403
    other = UserFactory(username="leaver")
    address = feed_address(client, other)
    other.is_active = False
    other.save()
    assert client.get(address).status_code == 403
