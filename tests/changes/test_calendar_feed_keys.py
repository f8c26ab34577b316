"""A calendar address works for 90 days after it was made, and a person may make new addresses
at any time, which stops every older one (audited); a new password still stops them too."""

import re
from datetime import timedelta

import pytest

from portal import clock
from portal.models import AuditEvent
from tests.changes.test_calendar_feed import feed_address
from tests.conftest import verified_login
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_address_expires_after_90_days_and_the_page_says_when(client, developer, paris):
    verified_login(client, developer)
    page = client.get("/calendar/", {"environment": "paris"}).content.decode()
    until = (clock.now() + timedelta(days=90)).strftime("%-d %b %Y")
    assert f"it works until {until}" in page
    client.logout()
    address = feed_address(client, developer)
    clock.shift(timedelta(days=89))
    assert client.get(address).status_code == 200
    clock.shift(timedelta(days=1, minutes=1))
    expired = client.get(address)
    assert expired.status_code == 403 and "This calendar address has expired" in expired.content.decode()
    assert client.get(feed_address(client, developer)).status_code == 200  # a new one works


def test_new_addresses_stop_the_old_ones_and_are_audited(client, paris):
    person = UserFactory(username="feeder")
    old = feed_address(client, person)
    assert client.get(old).status_code == 200
    verified_login(client, person)
    renewed = client.post("/calendar/?environment=paris", {"act": "new_feed"}, follow=True)
    assert "Your calendar addresses are new: the old ones stop working." in renewed.content.decode()
    client.logout()
    refused = client.get(old)
    assert refused.status_code == 403 and "not valid" in refused.content.decode()
    new = feed_address(client, person)
    assert new != old and client.get(new).status_code == 200
    event = AuditEvent.objects.get(action="calendar_feed.renew")
    assert event.actor_id == person.pk and (event.before, event.after) == (
        {"generation": 0},
        {"generation": 1},
    )


def test_another_persons_renewal_leaves_my_address_alone(client, developer, paris):
    mine = feed_address(client, developer)
    other = UserFactory(username="other")
    verified_login(client, other)
    client.post("/calendar/?environment=paris", {"act": "new_feed"})
    client.logout()
    assert client.get(mine).status_code == 200
    assert re.search(r"\?key=", mine)
