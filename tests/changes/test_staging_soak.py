"""The staging soak gate: computed from what staging reported about the change's build, opening
only 48 hours after it reached staging and passed, closing on a failure; moved by the shiftable
clock, never by sleeping."""

from datetime import timedelta

import pytest

from changes.models import ChecklistItem
from changes.tasks import staging_soak_check
from portal import clock
from portal.models import AuditEvent
from tests.conftest import client_for
from tests.factories import EnvironmentFactory, change_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def staging(db):
    return EnvironmentFactory(name="staging", display_name="Staging", branch="staging", is_production=False)


@pytest.fixture
def change(developer, staging):
    return change_create(developer, environment=EnvironmentFactory(), build="v1.4.0")


def report(person, result: str, version: str = "v1.4.0", **extra):
    body = {"environment": "staging", "version": version, "result": result, **extra}
    return client_for(person).post("/api/v1/staging-runs/", body, format="json")


def soak_item(change) -> ChecklistItem:
    return ChecklistItem.objects.get(change=change, key="staging_soak")


def soak(change, by) -> dict:
    return client_for(by).get(f"/api/v1/changes/{change.pk}/").json()["staging_soak"]


def test_the_gate_opens_48_hours_after_the_build_reached_staging_green(change, developer):
    assert report(developer, "deployed").status_code == 201
    assert report(developer, "green", url="https://ci.example.com/runs/7").status_code == 201
    assert soak(change, developer)["message"].startswith(
        "v1.4.0 green in Staging for 0 h of 48; the gate opens at"
    )
    clock.shift(timedelta(hours=47, minutes=59))
    staging_soak_check()
    assert not soak_item(change).done and soak(change, developer)["open"] is False
    clock.shift(timedelta(minutes=2))
    assert staging_soak_check() == 1
    item = soak_item(change)
    assert item.done and item.evidence.startswith("v1.4.0 green in Staging since")
    assert item.evidence.endswith("(48 h).") and soak(change, developer)["open"] is True
    assert AuditEvent.objects.filter(object_id=str(change.pk), action="change.checklist_prove").exists()


def test_a_failure_closes_the_gate_and_the_soak_starts_again_from_the_next_arrival(change, developer):
    report(developer, "deployed")
    report(developer, "green")
    clock.shift(timedelta(hours=49))
    staging_soak_check()
    assert soak_item(change).done
    assert report(developer, "red").status_code == 201
    assert not soak_item(change).done
    assert "failed in Staging" in soak(change, developer)["message"]
    report(developer, "deployed")
    report(developer, "green")
    clock.shift(timedelta(hours=47))
    staging_soak_check()
    assert not soak_item(change).done
    clock.shift(timedelta(hours=1, minutes=1))
    staging_soak_check()
    assert soak_item(change).done


def test_green_runs_alone_or_of_another_build_open_nothing(change, developer):
    report(developer, "green")  # a pass without an arrival
    report(developer, "deployed", version="v1.3.9")
    report(developer, "green", version="v1.3.9")
    clock.shift(timedelta(hours=72))
    staging_soak_check()
    assert not soak_item(change).done
    assert soak(change, developer)["message"] == "v1.4.0 has not reached Staging yet."


def test_a_change_without_a_build_says_what_is_missing(developer, staging):
    change = change_create(developer, environment=EnvironmentFactory())
    assert soak(change, developer)["message"].startswith("No build named yet")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"result": "purple"}, "result"),
        ({"environment": "nowhere"}, "environment"),
        ({"version": ""}, "version"),
    ],
)
def test_a_bad_report_is_a_400_naming_the_field(developer, staging, body, field):
    response = client_for(developer).post(
        "/api/v1/staging-runs/",
        {"environment": "staging", "version": "v1", "result": "green", **body},
        format="json",
    )
    assert response.status_code == 400 and response.json()["detail"].startswith(field)


def test_a_report_from_the_future_is_refused(developer, staging):
    future = (clock.now() + timedelta(hours=2)).isoformat()
    response = report(developer, "green", at=future)
    assert response.status_code == 400 and response.json()["detail"].startswith("at: ")


def test_only_people_who_file_changes_report_runs(auditor, developer, staging):
    assert report(auditor, "green").status_code == 403
    listed = client_for(auditor).get("/api/v1/staging-runs/", {"version": "v1.4.0"})
    assert listed.status_code == 200 and listed.json() == []
