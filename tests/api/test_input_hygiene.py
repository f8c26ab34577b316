"""What the API refuses, once for every endpoint, and the bounds it keeps: each case a reproduction
from the fuzzing report (fuzz.md), answered by a 4xx in words that writes nothing, never a 500."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, time, timedelta

import pytest
from rest_framework.test import APIClient

from changes.models import ChangeRequest, Comment, DeploymentWindow, Freeze, StandardChangeTemplate
from incidents.models import Incident
from portal import clock
from portal.models import AuditEvent
from tests.conftest import client_for
from tests.factories import approved_change, change_create, otp_code, totp_device

pytestmark = pytest.mark.django_db


def post(person, path: str, body, **extra):
    return client_for(person).post(path, body, format="json", **extra)


def refused(response, status: int = 400, field: str | None = None) -> dict:
    """The answer is the API's JSON error with that status (and names the field)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["detail"] and body["code"]
    if field is not None:
        assert field in body["errors"], body
    return body


# D1, A2: dates near the datetime bounds, and a slot decades ahead.


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("0001-01-01T00:00:00+14:00", "0001-01-01T01:00:00+14:00"),
        ("9999-12-31T23:00:00", "9999-12-31T23:30:00"),
        ("9999-12-30T12:00:00Z", "9999-12-30T13:00:00Z"),
        ("1999-12-31T12:00:00Z", "1999-12-31T13:00:00Z"),
    ],
)
def test_a_slot_at_the_edges_of_the_calendar_is_a_400(developer, paris, start, end):
    change = approved_change(developer, paris)
    response = post(
        developer, f"/api/v1/changes/{change.pk}/schedule/", {"window_start": start, "window_end": end}
    )
    refused(response, field="window_start")
    change.refresh_from_db()
    assert change.status == "approved" and change.scheduled_start is None


def test_an_auditor_scheduling_at_the_edge_of_the_calendar_is_refused_for_the_right(
    auditor, developer, paris
):
    change = approved_change(developer, paris)
    body = {"window_start": "0001-01-01T00:00:00+14:00", "window_end": "0001-01-01T01:00:00+14:00"}
    refused(post(auditor, f"/api/v1/changes/{change.pk}/schedule/", body), 403)


def test_a_slot_years_ahead_is_refused_by_the_service(developer, paris):
    change = approved_change(developer, paris)
    start = clock.now() + timedelta(days=5 * 365)
    body = {"window_start": start.isoformat(), "window_end": (start + timedelta(hours=1)).isoformat()}
    response = post(developer, f"/api/v1/changes/{change.pk}/schedule/", body)
    assert "days ahead" in refused(response)["detail"]


# D2: a freeze "until further notice", and one already kept until year 9999.


def test_a_freeze_ending_in_year_9999_is_refused(release_manager, paris):
    body = {
        "environment": paris.name,
        "starts_at": "2027-01-01T00:00:00Z",
        "ends_at": "9999-12-31T23:59:59Z",
        "reason": "until further notice",
        "otp": otp_code(totp_device(release_manager)),
    }
    refused(post(release_manager, "/api/v1/freezes/", body), field="ends_at")
    body["ends_at"] = (clock.now() + timedelta(days=3 * 365)).isoformat()
    body["otp"] = otp_code(totp_device(release_manager))
    assert "days ahead" in refused(post(release_manager, "/api/v1/freezes/", body))["detail"]
    assert not Freeze.objects.exists()


def test_a_freeze_kept_until_year_9999_breaks_neither_scheduling_nor_the_change_page(
    developer, release_manager, paris, client
):
    from tests.conftest import verified_login

    change = approved_change(developer, paris)
    Freeze.objects.create(
        environment=paris,
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        ends_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        reason="until further notice",
        created_by=release_manager,
        created_at=clock.now(),
    )
    start = (clock.now() + timedelta(days=7)).replace(microsecond=0)
    body = {"window_start": start.isoformat(), "window_end": (start + timedelta(hours=1)).isoformat()}
    answer = refused(post(developer, f"/api/v1/changes/{change.pk}/schedule/", body), 409)
    assert answer["next_slot"] is None and "No slot" in answer["detail"]
    assert verified_login(client, developer).get(f"/changes/{change.pk}/").status_code == 200


# D3: JSON nested past reason.


def test_json_nested_a_thousand_deep_is_a_400(developer, release_manager, paris):
    deep = "[" * 1000 + "]" * 1000
    response = client_for(developer).post("/api/v1/incidents/", deep, content_type="application/json")
    assert "nested deeper" in refused(response)["detail"]
    # Where the body is read to check the code it carries (before any right is used), too.
    response = client_for(release_manager).post("/api/v1/freezes/", deep, content_type="application/json")
    assert "nested deeper" in refused(response)["detail"]
    assert not Incident.objects.exists() and not Freeze.objects.exists()


def test_a_multipart_body_that_cannot_be_read_is_a_400_not_an_empty_form(sre, developer):
    from incidents.services import incident_declare

    incident = incident_declare(actor=developer, title="Checkout errors", severity="P2")
    garbage = b"--boundary\r\n\xf0\xb9\x85\x83%\xc3\xbc--boundary--\r\n"
    response = client_for(sre).post(
        f"/api/v1/incidents/{incident.pk}/acknowledge/",
        garbage,
        content_type="multipart/form-data; boundary=boundary",
    )
    refused(response)
    incident.refresh_from_db()
    assert incident.status == "triggered"


def github(payload: bytes, event: str, settings) -> object:
    settings.GITHUB_WEBHOOK_SECRET = "hygiene-secret"
    signed = "sha256=" + hmac.new(b"hygiene-secret", payload, hashlib.sha256).hexdigest()
    return APIClient().post(
        "/api/v1/webhooks/github/",
        payload,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT=event,
        HTTP_X_HUB_SIGNATURE_256=signed,
    )


def test_the_github_webhook_refuses_deep_json_nul_and_lone_surrogates(settings):
    assert github(b"[" * 1000 + b"]" * 1000, "check_run", settings).status_code == 400
    event = {"deployment": {"environment": "st\u0000aging"}, "deployment_status": {"state": "success"}}
    assert github(json.dumps(event).encode(), "deployment_status", settings).status_code == 400
    review = b'{"review": {"user": {"login": "\\ud800"}, "state": "approved"}}'
    assert github(review, "pull_request_review", settings).status_code == 400


# D4: foreign-key ids past 2^63.


def test_post_mortem_ids_past_a_bigint_are_404(auditor):
    for path in ("/api/v1/incidents/99999999999999999999/postmortem/",):
        assert client_for(auditor).get(path).status_code == 404


# D5: a review's time at the edge of the calendar.


@pytest.mark.parametrize("submitted_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_review_at_the_edge_of_the_calendar_is_kept_without_its_time(developer, settings, submitted_at):
    from changes.models import PullRequest

    change = change_create(developer, pull_request="#42")
    PullRequest.objects.create(change=change, number=42, head_sha="b" * 40)
    event = {
        "action": "submitted",
        "review": {"user": {"login": "alex"}, "state": "approved", "commit_id": "b" * 40},
        "pull_request": {"number": 42, "head": {"ref": "staging"}, "base": {"ref": "main"}},
    }
    event["review"]["submitted_at"] = submitted_at
    assert github(json.dumps(event).encode(), "pull_request_review", settings).status_code == 202
    assert PullRequest.objects.get(change=change).latest_reviews() == {"alex": "APPROVED"}


# D6: NUL bytes and lone surrogates, in the address, the query string and the body.


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/deployments/?environment=%00",
        "/api/v1/staging-runs/?version=%00",
        "/api/v1/windows/?environment=%00",
        "/api/v1/freezes/?environment=%00",
        "/api/v1/changes/?q=%00",
    ],
)
def test_a_nul_in_the_query_string_is_a_400_naming_the_parameter(auditor, path):
    name = path.split("?")[1].split("=")[0]
    assert "NUL" in refused(client_for(auditor).get(path), field=name)["detail"]


def test_a_nul_in_the_address_is_a_400(developer):
    refused(client_for(developer).delete("/api/v1/tokens/%00/"), field="path")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/incidents/", {"title": "t", "severity": "P3", "services": ["w\u0000eb"]}, "services"),
        ("/api/v1/incidents/", {"title": "t", "severity": "P3", "services": ["w\ud800eb"]}, "services"),
        ("/api/v1/incidents/", {"title": "t", "severity": "P3", "summary": {"k\u0000": 1}}, "summary"),
    ],
)
def test_a_nul_or_a_lone_surrogate_in_a_json_body_is_a_400(developer, path, body, field):
    response = client_for(developer).post(
        path, json.dumps(body), content_type="application/json"
    )  # json.dumps writes "\\u0000" and "\\ud800", as a client would
    refused(response, field=field)
    assert not Incident.objects.exists()


# D10, D11: missing credentials, and a body larger than the API takes.


def test_a_call_without_credentials_is_a_401_with_the_scheme_to_use(api_client):
    response = api_client.get("/api/v1/me/")
    assert refused(response, 401)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_a_body_larger_than_the_api_takes_is_a_json_413(developer, settings):
    body = json.dumps(
        {"title": "t", "severity": "P3", "summary": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}
    )
    response = client_for(developer).post("/api/v1/incidents/", body, content_type="application/json")
    assert refused(response, 413)["code"] == "too_large"
    assert not Incident.objects.exists()


# A3, item 9: bounds on dates, lengths and what a one-line title holds.


def test_an_incident_started_in_year_1_is_a_400(developer):
    body = {"title": "t", "severity": "P3", "started_at": "0001-01-01T00:00:00Z"}
    refused(post(developer, "/api/v1/incidents/", body), field="started_at")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/incidents/", {"title": "t", "severity": "P3", "summary": "x" * 1_000_000}, "summary"),
        (
            "/api/v1/changes/",
            {"title": "t", "description": "x" * 1_000_000, "rollback_plan": "r"},
            "description",
        ),
    ],
)
def test_a_megabyte_of_free_text_is_a_400_naming_the_limit(developer, path, body, field):
    answer = refused(post(developer, path, body), field=field)
    assert "no more than" in answer["detail"] and "000 characters" in answer["detail"]


def test_a_megabyte_comment_is_a_400_naming_the_limit(developer):
    change = change_create(developer)
    answer = refused(
        post(developer, f"/api/v1/changes/{change.pk}/comments/", {"body": "x" * 1_000_000}), field="body"
    )
    assert "5000 characters" in answer["detail"]
    assert not Comment.objects.exists()


@pytest.mark.parametrize("title", ["\u0007\u001b[31mred\u202eevil", "line\nbreak", "zero\u200bwidth"])
def test_control_and_bidi_characters_in_a_title_are_a_400(developer, title):
    answer = refused(post(developer, "/api/v1/incidents/", {"title": title, "severity": "P3"}), field="title")
    assert "U+" in answer["detail"]
    change = change_create(developer)
    refused(client_for(developer).patch(f"/api/v1/changes/{change.pk}/", {"title": title}, format="json"))
    assert ChangeRequest.objects.get(pk=change.pk).title == "Faster render queue"


def test_a_number_where_text_belongs_is_a_400(developer):
    refused(post(developer, "/api/v1/incidents/", {"title": 0, "severity": "P3"}), field="title")


# A4: a window's time with an offset.


def test_a_window_time_with_an_offset_is_refused_rather_than_dropped(release_manager, paris):
    body = {
        "environment": paris.name,
        "weekdays": [0],
        "start_time": "02:00:00+05:00",
        "end_time": "04:00:00+05:00",
        "otp": otp_code(totp_device(release_manager)),
    }
    windows = DeploymentWindow.objects.count()
    answer = refused(post(release_manager, "/api/v1/windows/", body), field="start_time")
    assert "without an offset" in answer["detail"]
    assert DeploymentWindow.objects.count() == windows


# A5: contradictory template rules.


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"min_approvals": 0, "min_code_owner_approvals": 3}, "min_code_owner_approvals"),
        ({"required_sign_offs": ["product", "engineering_lead", "product"]}, "required_sign_offs"),
    ],
)
def test_a_template_with_contradictory_rules_is_a_400(policy_admin, rules, field):
    body = {
        "name": "Rotate a key",
        "description": "Rotates a key.",
        "rollback_plan": "Put the old key back.",
        "otp": otp_code(totp_device(policy_admin)),
        **rules,
    }
    refused(post(policy_admin, "/api/v1/standard-changes/", body), field=field)
    assert not StandardChangeTemplate.objects.filter(name="Rotate a key").exists()


# A6: query parameters given empty or malformed are refused, not ignored.


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/changes/?page_size=null", "page_size"),
        ("/api/v1/changes/?page_size=0", "page_size"),
        ("/api/v1/changes/?page_size=501", "page_size"),
        ("/api/v1/changes/?cursor=nonsense", "cursor"),
        ("/api/v1/changes/?created_after=", "created_after"),
        ("/api/v1/audit/?until=", "until"),
        ("/api/v1/deployments/?active=yes", "active"),
        ("/api/v1/incidents/?status=", "status"),
        ("/api/v1/incidents/measures/?days=", "days"),
    ],
)
def test_a_malformed_query_parameter_is_a_400(auditor, path, field):
    refused(client_for(auditor).get(path), field=field)


# Item 6: what the change's history and the environments list show.


def test_the_change_history_shows_who_did_what_not_where_from(developer, auditor):
    change = change_create(developer)
    entries = client_for(auditor).get(f"/api/v1/changes/{change.pk}/history/").json()
    assert entries and all(set(entry) == {"id", "created_at", "actor", "action", "note"} for entry in entries)
    events = AuditEvent.objects.filter(object_id=str(change.pk), object_type="changes.changerequest")
    assert {entry["action"] for entry in entries} >= set(events.values_list("action", flat=True))


def test_environment_details_are_shown_only_to_those_who_may_read_deployment_settings(
    developer, devops, paris
):
    paris.aws_account = "123456789012"
    paris.save(update_fields=["aws_account"])
    seen = {person: client_for(person).get("/api/v1/environments/").json() for person in (developer, devops)}
    by_name = {person: {e["name"]: e for e in rows} for person, rows in seen.items()}
    assert by_name[developer][paris.name]["aws_account"] == ""
    assert by_name[devops][paris.name]["aws_account"] == "123456789012"


def test_a_window_time_without_an_offset_is_still_taken(release_manager, paris):
    body = {
        "environment": paris.name,
        "weekdays": [0],
        "start_time": "06:00",
        "end_time": "07:00",
        "otp": otp_code(totp_device(release_manager)),
    }
    response = post(release_manager, "/api/v1/windows/", body)
    assert response.status_code == 201, response.json()
    assert DeploymentWindow.objects.filter(environment=paris, start_time=time(6)).exists()
