"""GET /api/v1/changes/: search, filters, cursor pagination and the progress each row shows."""

from datetime import timedelta

import pytest

from changes.models import ChangeRequest
from portal import clock
from tests.conftest import client_for
from tests.factories import (
    EnvironmentFactory,
    IncidentFactory,
    ServiceFactory,
    StandardChangeTemplateFactory,
    change_create,
    otp_code,
    totp_device,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def changes(developer, qa):
    """Three changes that differ in every filtered field; `old` is ten days old, `mid` five."""
    production = EnvironmentFactory()
    staging = EnvironmentFactory(
        name="staging", display_name="Staging", branch="staging", is_production=False
    )
    web, api = ServiceFactory(name="web"), ServiceFactory(name="api")
    made = {
        "old": change_create(developer, title="Faster render queue", environment=production, services=[web]),
        "mid": change_create(
            qa,
            title="Hotfix login",
            description="Session cookie expiry.",
            change_type="emergency",
            environment=staging,
            services=[api],
            incident=IncidentFactory(),
            source_branch="hotfix-login",
        ),
        "new": change_create(
            developer,
            title="Rotate keys",
            change_type="standard",
            environment=production,
            services=[web, api],
            standard_template=StandardChangeTemplateFactory(),
        ),
    }
    for name, days in (("old", 10), ("mid", 5)):
        ChangeRequest.objects.filter(pk=made[name].pk).update(created_at=clock.now() - timedelta(days=days))
    client_for(qa).post(f"/api/v1/changes/{made['mid'].pk}/submit/")
    client_for(developer).post(f"/api/v1/changes/{made['new'].pk}/cancel/", {"reason": "Done by hand."})
    return made


def listed(by, **params) -> list[int]:
    response = client_for(by).get("/api/v1/changes/", params)
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def iso(days_ago: float) -> str:
    return (clock.now() - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, ["new", "mid", "old"]),
        ({"q": "faster"}, ["old"]),
        ({"q": "COOKIE"}, ["mid"]),
        ({"status": "submitted"}, ["mid"]),
        ({"status": ["draft", "cancelled"]}, ["new", "old"]),
        ({"change_type": "emergency"}, ["mid"]),
        ({"environment": "production"}, ["new", "old"]),
        ({"service": "api"}, ["new", "mid"]),
        ({"requester": "qa"}, ["mid"]),
        ({"created_after": "7"}, ["new", "mid"]),
        ({"created_before": "7"}, ["old"]),
        ({"created_after": "7", "created_before": "1"}, ["mid"]),
        ({"environment": "production", "service": "api"}, ["new"]),
    ],
)
def test_change_list_filters(changes, developer, params, expected):
    params = {key: iso(int(value)) if key.startswith("created_") else value for key, value in params.items()}

    assert listed(developer, **params) == [changes[name].pk for name in expected]


@pytest.mark.parametrize("spelling", ["CHG-{pk:06d}", "chg-{pk:06d}", "{pk}"])
def test_change_list_finds_a_change_by_its_number(changes, developer, spelling):
    assert listed(developer, q=spelling.format(pk=changes["mid"].pk)) == [changes["mid"].pk]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"status": "sleeping"}, "status"),
        ({"environment": "nowhere"}, "environment"),
        ({"created_after": "soon"}, "created_after"),
    ],
)
def test_change_list_refuses_an_unknown_filter_value(changes, developer, params, field):
    response = client_for(developer).get("/api/v1/changes/", params)

    assert response.status_code == 400
    assert field in response.json()["detail"]


def test_change_list_pages_with_a_cursor(developer):
    made = [change_create(developer, title=f"Change {n}").pk for n in range(5)]
    api = client_for(developer)

    seen, url, pages = [], "/api/v1/changes/?page_size=2", 0
    while url:
        page = api.get(url).json()
        assert len(page["results"]) <= 2
        seen += [row["id"] for row in page["results"]]
        url, pages = page["next"], pages + 1

    assert pages == 3
    assert seen == sorted(made, reverse=True)


def test_change_list_shows_progress_per_row(developer, qa, devops):
    busy = change_create(developer, title="Busy")
    change_create(developer, title="Idle")
    api = client_for(developer)
    api.post(f"/api/v1/changes/{busy.pk}/submit/")  # proves stakeholders_notified
    for key in ("dashboards", "on_call_briefed"):
        item = busy.checklist.get(key=key)
        api.patch(
            f"/api/v1/changes/{busy.pk}/checklist/{item.pk}/", {"done": True, "evidence": "ok"}, format="json"
        )
    for person in (qa, devops):
        client_for(person).post(
            f"/api/v1/changes/{busy.pk}/approvals/",
            {"decision": "approve", "otp": otp_code(totp_device(person))},
            format="json",
        )

    rows = {row["title"]: row for row in client_for(qa).get("/api/v1/changes/").json()["results"]}

    progress = ("checklist_done", "checklist_total", "approval_count")
    assert tuple(rows["Busy"][k] for k in progress) == (4, 25, 2)  # rollback plan, stakeholders, 2 ticks
    assert tuple(rows["Idle"][k] for k in progress) == (1, 25, 0)  # the rollback plan, proven at creation
    api.patch(
        f"/api/v1/changes/{busy.pk}/", {"title": "Busy again"}, format="json"
    )  # an edit dismisses approvals
    assert client_for(qa).get("/api/v1/changes/", {"q": "Busy"}).json()["results"][0]["approval_count"] == 0
