"""The change list page: its rows are remembered by what they show, and never shown stale."""

import re

import pytest
from django.db import transaction
from django.test.utils import override_settings

from changes.services import change_decide, change_submit
from tests.changes.conftest import drawn_from
from tests.conftest import verified_login
from tests.factories import EnvironmentFactory, UserFactory, change_create

pytestmark = pytest.mark.django_db


def row_of(html: str, number: str) -> str:
    match = re.search(rf"<tr>\s*<td><a [^>]*><strong>{number}</strong>.*?</tr>", html, re.S)
    assert match, f"{number} is not on the page"
    return match.group(0)


@pytest.fixture
def rows_drawn(monkeypatch):
    return drawn_from(monkeypatch, "changes/_row.html", "change")


def test_a_second_view_of_the_list_draws_no_row_again(client, developer, rows_drawn):
    for n in range(3):
        change_create(developer, title=f"Change {n}")
    verified_login(client, developer)
    first = client.get("/changes/").content.decode()
    assert len(rows_drawn) == 3
    second = client.get("/changes/").content.decode()
    assert len(rows_drawn) == 3 and second.count("<tr>") == first.count("<tr>")


def test_a_row_shows_an_approval_and_a_new_status_at_once(client, developer, rows_drawn):
    alex = UserFactory(username="alex", role="qa")
    change = change_create(developer, title="Rotate keys")
    other = change_create(developer, title="Untouched")
    verified_login(client, developer)
    before = row_of(client.get("/changes/").content.decode(), change.number)
    assert "Draft" in before and "0/3" in before
    with transaction.atomic():
        change_submit(actor=developer, change=change)
    with transaction.atomic():
        change_decide(actor=alex, change=change, decision="approve")
    drawn_before = len(rows_drawn)
    after = row_of(client.get("/changes/").content.decode(), change.number)
    assert "Submitted" in after and "1/3" in after
    assert rows_drawn[drawn_before:] == [change]  # the untouched row came from the cache
    assert other.number in client.get("/changes/").content.decode()


def test_each_viewer_reads_the_times_in_their_own_zone(client, developer):
    change = change_create(developer, title="Across zones")
    tokyo = UserFactory(username="tokyo", time_zone="Asia/Tokyo")
    verified_login(client, developer)
    utc_row = row_of(client.get("/changes/").content.decode(), change.number)
    client.logout()
    verified_login(client, tokyo)
    tokyo_row = row_of(client.get("/changes/").content.decode(), change.number)
    utc_stamp = re.search(r'datetime="([^"]+)"', utc_row).group(1)
    tokyo_stamp = re.search(r'datetime="([^"]+)"', tokyo_row).group(1)
    assert utc_stamp.endswith("+00:00") and tokyo_stamp.endswith("+09:00")


def test_a_changed_row_template_draws_the_rows_anew(client, developer, settings, tmp_path, rows_drawn):
    change_create(developer, title="Template edit")
    verified_login(client, developer)
    client.get("/changes/")
    (tmp_path / "changes").mkdir()
    (tmp_path / "changes" / "_row.html").write_text("<tr><td>{{ change.title }} (new layout)</td></tr>")
    engine = dict(settings.TEMPLATES[0], DIRS=[tmp_path, *settings.TEMPLATES[0]["DIRS"]])
    with override_settings(TEMPLATES=[engine]):
        assert "Template edit (new layout)" in client.get("/changes/").content.decode()


def test_the_filters_offer_an_environment_as_soon_as_it_is_added(client, developer, monkeypatch):
    forms_drawn = drawn_from(monkeypatch, "includes/form.html", "form")
    verified_login(client, developer)
    assert 'value="eu-west"' not in client.get("/changes/").content.decode()
    client.get("/changes/")
    assert len(forms_drawn) == 1  # the second view's filters came from the cache
    EnvironmentFactory(name="eu-west", display_name="EU West")
    assert '<option value="eu-west">EU West</option>' in client.get("/changes/").content.decode()


def test_a_filter_naming_an_unknown_environment_says_so_until_it_exists(client, developer):
    verified_login(client, developer)
    refused = client.get("/changes/", {"environment": "eu-west"}).content.decode()
    assert "Select a valid choice. eu-west is not one of the available choices." in refused
    EnvironmentFactory(name="eu-west")
    taken = client.get("/changes/", {"environment": "eu-west"}).content.decode()
    assert "is not one of the available choices" not in taken and '<option value="eu-west" selected>' in taken


def test_parameters_that_are_not_filters_draw_no_other_form(client, developer, monkeypatch):
    forms_drawn = drawn_from(monkeypatch, "includes/form.html", "form")
    verified_login(client, developer)
    client.get("/changes/")
    client.get("/changes/", {"utm_source": "mail"})
    assert len(forms_drawn) == 1
