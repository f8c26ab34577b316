"""The staging soak gate: computed from what CI reported about the change's commit (the one the
release merges), opening only 48 hours after it reached staging and passed, closing on a failure;
moved by the shiftable clock, never by sleeping. Reports come only from CI (a token of the ci
scope, or GitHub's signed event) and carry the portal's time, so nobody forges or backdates one."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from changes.models import ChecklistItem, PullRequest, StagingRun
from changes.tasks import staging_soak_check
from portal import clock, services
from portal.models import AuditEvent
from tests.conftest import client_for
from tests.factories import EnvironmentFactory, UserFactory, change_create, otp_code, totp_device

pytestmark = pytest.mark.django_db

HEAD = "4" * 40
OTHER = "5" * 40


@pytest.fixture
def staging(db):
    return EnvironmentFactory(name="staging", display_name="Staging", branch="staging", is_production=False)


@pytest.fixture
def change(developer, staging):
    """A change whose branch was read at HEAD."""
    change = change_create(developer, environment=EnvironmentFactory())
    PullRequest.objects.create(change=change, head_sha=HEAD, read_at=clock.now())
    return change


@pytest.fixture
def ci(db) -> APIClient:
    """CI: a client holding a DevOps engineer's token of the ci scope."""
    casey = UserFactory(username="casey", role="devops")
    _token, secret = services.api_token_create(actor=casey, name="CI", expires_in_days=30, scope="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def report(client, result: str, commit: str = HEAD, **extra):
    body = {"environment": "staging", "commit": commit, "version": "build-41", "result": result, **extra}
    return client.post("/api/v1/staging-runs/", body, format="json")


def soak_item(change) -> ChecklistItem:
    return ChecklistItem.objects.get(change=change, key="staging_soak")


def soak(change, by) -> dict:
    return client_for(by).get(f"/api/v1/changes/{change.pk}/").json()["staging_soak"]


def test_the_gate_opens_48_hours_after_the_commit_reached_staging_green(change, ci, developer):
    assert report(ci, "deployed").status_code == 201
    assert report(ci, "green", url="https://ci.example.com/runs/7").status_code == 201
    assert soak(change, developer)["message"].startswith(
        "4444444444 green in Staging for 0 h of 48; the gate opens at"
    )
    clock.shift(timedelta(hours=47, minutes=59))
    staging_soak_check()
    assert not soak_item(change).done and soak(change, developer)["open"] is False
    clock.shift(timedelta(minutes=2))
    assert staging_soak_check() == 1
    item = soak_item(change)
    assert item.done and item.evidence.startswith("4444444444 green in Staging since")
    assert item.evidence.endswith("(48 h).") and soak(change, developer)["open"] is True
    assert AuditEvent.objects.filter(object_id=str(change.pk), action="change.checklist_prove").exists()
    run = StagingRun.objects.filter(result="green").get()
    assert (run.commit, run.version, run.recorded_by.username) == (HEAD, "build-41", "casey")


def test_a_failure_closes_the_gate_and_the_soak_starts_again_from_the_next_arrival(change, ci):
    report(ci, "deployed")
    report(ci, "green")
    clock.shift(timedelta(hours=49))
    staging_soak_check()
    assert soak_item(change).done
    assert report(ci, "red").status_code == 201
    assert not soak_item(change).done
    report(ci, "deployed")
    report(ci, "green")
    clock.shift(timedelta(hours=47))
    staging_soak_check()
    assert not soak_item(change).done
    clock.shift(timedelta(hours=1, minutes=1))
    staging_soak_check()
    assert soak_item(change).done


def test_green_runs_alone_or_of_another_commit_open_nothing(change, ci, developer):
    report(ci, "green")  # a pass without an arrival
    report(ci, "deployed", commit=OTHER)
    report(ci, "green", commit=OTHER)
    clock.shift(timedelta(hours=72))
    staging_soak_check()
    assert not soak_item(change).done
    assert soak(change, developer)["message"] == "4444444444 has not reached staging yet."


def test_new_commits_soak_anew_an_old_soaked_commit_does_not_stand_for_them(change, ci, developer):
    """The attack: name an old, properly soaked build while shipping new code."""
    report(ci, "deployed", commit=OTHER)
    report(ci, "green", commit=OTHER)
    clock.shift(timedelta(hours=72))
    staging_soak_check()
    assert soak(change, developer)["open"] is False  # OTHER soaked; the change is at HEAD
    PullRequest.objects.filter(change=change).update(head_sha=OTHER)
    assert soak(change, developer)["open"] is True  # what soaked is what it would release


def test_a_change_not_read_yet_says_what_is_missing(developer, staging):
    change = change_create(developer, environment=EnvironmentFactory())
    assert soak(change, developer)["message"].startswith("The change's branch has not been read yet")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"result": "purple"}, "result"),
        ({"environment": "nowhere"}, "environment"),
        ({"commit": "v1.4.0"}, "commit"),
        ({"commit": "4444444"}, "commit"),  # a short id names no commit for sure
        ({"environment": "production"}, "environment"),  # production is deployed, not soaked
    ],
)
def test_a_bad_report_is_a_400_naming_the_field(change, ci, body, field):
    EnvironmentFactory()
    response = report(ci, **{"result": "green", **body})
    assert response.status_code == 400 and response.json()["detail"].startswith(field)
    assert not StagingRun.objects.exists()


def test_a_report_naming_its_own_time_is_refused_with_nothing_written(change, ci):
    """The attack: a backdated arrival starts a soak that is already 49 hours old."""
    events = AuditEvent.objects.count()
    response = report(ci, "deployed", at=(clock.now() - timedelta(hours=49)).isoformat())
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "at: A staging run is stamped with the portal's time when it arrives; leave `at` out."
    )
    assert not StagingRun.objects.exists() and AuditEvent.objects.count() == events


@pytest.mark.parametrize("how", ["session", "full-token"])
def test_the_requester_cannot_report_staging_runs_on_their_own_change(change, developer, how):
    """The attack: the requester posts `deployed` then `green` for their own build; or anyone
    posts `red` against a colleague's."""
    if how == "session":
        client = client_for(developer)
    else:
        _token, secret = services.api_token_create(actor=developer, name="Mine", expires_in_days=1)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    events = AuditEvent.objects.count()
    for result in ("deployed", "green", "red"):
        response = report(client, result)
        assert response.status_code == 403
    assert (
        response.json()["detail"]
        == "You need the right to report staging test runs (with a CI token) (staging.report)."
    )
    assert not StagingRun.objects.exists() and AuditEvent.objects.count() == events


def test_only_those_who_may_report_runs_make_a_ci_token(developer):
    code = otp_code(totp_device(developer))
    response = client_for(developer).post(
        "/api/v1/tokens/", {"name": "My CI", "expires_in_days": 7, "scope": "ci", "otp": code}, format="json"
    )
    assert response.status_code == 403 and "staging.report" in response.json()["detail"]
    devops = UserFactory(username="dee", role="devops")
    code = otp_code(totp_device(devops))
    made = client_for(devops).post(
        "/api/v1/tokens/", {"name": "CI", "expires_in_days": 7, "scope": "ci", "otp": code}, format="json"
    )
    assert made.status_code == 201 and made.json()["scope"] == "ci"
    event = AuditEvent.objects.get(action="api_token.create")
    assert event.after["scope"] == "ci"


def test_a_ci_token_does_nothing_but_report_runs(change, ci):
    for path in ("/api/v1/changes/", f"/api/v1/changes/{change.pk}/", "/api/v1/deployments/"):
        response = ci.get(path)
        assert response.status_code == 403 and "ci scope" in response.json()["detail"]
    assert ci.get("/api/v1/staging-runs/").status_code == 200


def test_auditors_read_runs_and_report_none(auditor, staging):
    assert report(client_for(auditor), "green").status_code == 403
    listed = client_for(auditor).get("/api/v1/staging-runs/", {"commit": HEAD})
    assert listed.status_code == 200 and listed.json() == []


def test_a_devops_engineer_reports_only_through_a_ci_token(change):
    """Holding staging.report is not enough: by hand (a session, a full token) is refused."""
    casey = UserFactory(username="cas", role="devops")
    _token, secret = services.api_token_create(actor=casey, name="Full", expires_in_days=1)
    full = APIClient()
    full.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    events = AuditEvent.objects.count()
    for client in (client_for(casey), full):
        response = report(client, "deployed")
        assert response.status_code == 403
        assert response.json()["detail"].startswith("Staging runs come from CI: an API token of the ci scope")
    assert not StagingRun.objects.exists() and AuditEvent.objects.count() == events
