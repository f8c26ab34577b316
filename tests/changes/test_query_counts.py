"""The change list and detail run a constant number of SQL queries, however many rows they show.

Each test counts the queries of one request at a small size, grows the data, and counts again: the
two counts are equal (no magic number to keep up to date)."""

import re
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalogue.models import Service
from changes import services
from tests.conftest import client_for
from tests.factories import EnvironmentFactory, ServiceFactory, UserFactory, change_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalogue():
    EnvironmentFactory()
    ServiceFactory(name="web")
    ServiceFactory(name="api")


def extra(small: list[str], large: list[str]) -> str:
    """The queries the larger page ran more often, digits folded, for the failure message."""
    fold = Counter(re.sub(r"\d+(, \d+)*", "N", sql) for sql in large)
    fold.subtract(re.sub(r"\d+(, \d+)*", "N", sql) for sql in small)
    return "\n".join(f"{n} more: {sql[:300]}" for sql, n in fold.items() if n)


def queries(api, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url)
    assert response.status_code == 200, response.json()
    return [q["sql"] for q in captured.captured_queries]


def add_changes(requester, count: int, start: int) -> None:
    """Changes that differ in what a row shows: services, stakeholders, submitted or not."""
    catalogue = list(Service.objects.order_by("name"))
    for n in range(start, start + count):
        watcher = UserFactory(username=f"watcher{n}")
        change = change_create(
            requester, title=f"Change {n}", services=catalogue[: 1 + n % 2], stakeholders=[watcher]
        )
        if n % 3 == 0:
            services.change_submit(actor=requester, change=change)


def add_activity(change, start: int, count: int) -> None:
    """Decisions, comments and checklist ticks, each by a different person."""
    items = list(change.checklist.filter(integration="", vouched_by="").order_by("position"))
    for n in range(start, start + count):
        person = UserFactory(username=f"reviewer{n}")
        services.change_decide(actor=person, change=change, decision="approve")
        services.comment_add(actor=person, change=change, body=f"Looked at part {n}.")
        item = items[n % len(items)]
        services.checklist_item_set(actor=person, item=item, done=True, evidence=f"Checked by {person}.")


def test_change_list_runs_as_many_queries_for_30_changes_as_for_3(developer):
    api = client_for(developer)
    add_changes(developer, 3, start=0)
    api.get("/api/v1/changes/")  # warm: the first request of a client loads what later ones reuse

    small = queries(api, "/api/v1/changes/")
    add_changes(developer, 27, start=3)
    large = queries(api, "/api/v1/changes/")

    assert len(api.get("/api/v1/changes/").json()["results"]) == 30
    assert len(large) == len(small), extra(small, large)


def test_change_detail_runs_as_many_queries_for_8_decisions_and_comments_as_for_2(developer):
    change = change_create(developer, stakeholders=[UserFactory(username="bo")])
    services.change_submit(actor=developer, change=change)
    add_activity(change, 0, 2)
    api = client_for(developer)
    url = f"/api/v1/changes/{change.pk}/"
    api.get(url)

    small = queries(api, url)
    add_activity(change, 2, 6)
    large = queries(api, url)

    assert len(api.get(url).json()["approvals"]) == 8
    assert len(large) == len(small), extra(small, large)


@pytest.mark.parametrize("endpoint", ["approvals", "comments", "checklist", "history"])
def test_change_sub_lists_run_as_many_queries_for_8_entries_as_for_2(developer, endpoint):
    change = change_create(developer)
    services.change_submit(actor=developer, change=change)
    add_activity(change, 0, 2)
    api = client_for(developer)
    url = f"/api/v1/changes/{change.pk}/{endpoint}/"
    api.get(url)

    small = queries(api, url)
    add_activity(change, 2, 6)
    large = queries(api, url)

    assert len(large) == len(small), extra(small, large)
