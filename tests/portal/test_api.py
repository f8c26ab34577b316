import ipaddress
from datetime import timedelta

import pytest
from django.db import transaction

from portal import clock, context, services
from portal.services import audit_record
from tests.conftest import client_for, verified_login
from tests.factories import UserFactory

# The audit listing reads through the replica alias (a mirror of the test database), on its own
# connection: those tests commit their rows so that connection sees them.
replica_db = pytest.mark.django_db(transaction=True, databases="__all__")


def record(action: str, actor=None, object_id: str = "1") -> None:
    with transaction.atomic():
        audit_record(actor=actor, action=action, object_type="demo.thing", object_id=object_id)


@pytest.mark.django_db
def test_unknown_api_url_is_a_json_404(api_client):
    response = api_client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "No API endpoint at /api/v1/no-such-thing/.",
        "code": "not_found",
    }


@pytest.mark.django_db
def test_api_refuses_an_anonymous_caller_with_a_json_error(api_client):
    response = api_client.get("/api/v1/audit/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }


@pytest.mark.django_db
def test_api_permission_error_says_what_is_missing(user):
    response = client_for(user).get("/api/v1/audit/")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "You need the right to read the audit trail (audit.view).",
        "code": "permission_denied",
    }


@pytest.mark.django_db
def test_api_validation_error_names_each_field(sre):
    response = client_for(sre).post("/api/v1/notifications/test/", {"channel": "pigeon"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"] == 'channel: "pigeon" is not a valid choice. recipient: This field is required.'
    assert set(body["errors"]) == {"channel", "recipient"}


@pytest.mark.django_db
def test_api_unhandled_error_is_a_json_500(sre, monkeypatch, client):
    """An exception nobody expected still answers JSON, with nothing half-written."""
    from portal import services

    def explode(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "notification_test_send", explode)
    client.raise_request_exception = False
    verified_login(client, sre)
    response = client.post(
        "/api/v1/notifications/test/",
        {"channel": "email", "recipient": "ops@example.com"},
        content_type="application/json",
    )
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"


@replica_db
def test_audit_list_is_newest_first_with_cursor_pagination(audit_viewer):
    for n in range(5):
        record(f"thing.step{n}")
    client = client_for(audit_viewer)

    first = client.get("/api/v1/audit/?page_size=2").json()
    assert [e["action"] for e in first["results"]] == ["thing.step4", "thing.step3"]
    second = client.get(first["next"]).json()
    assert [e["action"] for e in second["results"]] == ["thing.step2", "thing.step1"]
    third = client.get(second["next"]).json()
    assert [e["action"] for e in third["results"]] == ["thing.step0"]
    assert third["next"] is None


@replica_db
def test_audit_list_filters_by_actor_action_object_and_time(audit_viewer):
    ada = UserFactory(username="ada", first_name="Ada", last_name="Lovelace")
    record("change_request.submit", actor=ada, object_id="10")
    clock.shift(timedelta(hours=2))
    record("change_request.approve", object_id="11")
    record("deployment.start", actor=ada, object_id="11")
    client = client_for(audit_viewer)

    def actions(query: str) -> list[str]:
        response = client.get(f"/api/v1/audit/?{query}")
        assert response.status_code == 200, response.json()
        return sorted(e["action"] for e in response.json()["results"])

    assert actions(f"actor={ada.pk}") == ["change_request.submit", "deployment.start"]
    assert actions("actor=lovelace") == ["change_request.submit", "deployment.start"]
    assert actions("action=change_request") == ["change_request.approve", "change_request.submit"]
    assert actions("object_type=demo.thing&object_id=11") == [
        "change_request.approve",
        "deployment.start",
    ]
    cutoff = (clock.now() - timedelta(hours=1)).isoformat()
    assert actions(f"until={cutoff.replace('+', '%2B')}") == ["change_request.submit"]
    assert actions(f"since={cutoff.replace('+', '%2B')}") == [
        "change_request.approve",
        "deployment.start",
    ]


@pytest.mark.django_db
def test_audit_list_bad_time_filter_is_a_400(audit_viewer):
    response = client_for(audit_viewer).get("/api/v1/audit/?since=yesterday-ish")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["detail"].startswith("since: ")


@replica_db
def test_audit_event_records_who_and_from_where_through_the_api(sre, settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    response = client_for(sre).post(
        "/api/v1/notifications/test/",
        {"channel": "slack", "recipient": "#production-alerts"},
        format="json",
        HTTP_USER_AGENT="greenlight-test/1.0",
        HTTP_X_REQUEST_ID="ci-run-000123",
        HTTP_X_FORWARDED_FOR="198.51.100.20",
        REMOTE_ADDR="10.0.0.2",  # the load balancer, trusted below
    )
    assert response.status_code == 202
    event = client_for(sre).get("/api/v1/audit/?action=notification.test_send").json()["results"][0]
    assert event["actor_id"] == sre.pk
    assert event["ip"] == "198.51.100.20"
    assert event["user_agent"] == "greenlight-test/1.0"
    assert event["request_id"] == "ci-run-000123"
    assert event["after"] == {"channel": "slack", "recipient": "#production-alerts"}
    assert response["X-Request-ID"] == "ci-run-000123"


@pytest.mark.django_db
def test_audit_verify_endpoint_reports_the_chain(audit_viewer):
    with context.bound(context.RequestContext(request_id="r" * 10)):
        record("thing.one")
    services.audit_verify_run()
    response = client_for(audit_viewer).get("/api/v1/audit/verify/")
    assert response.status_code == 200
    answer = response.json()
    assert (answer["ok"], answer["checked"], answer["total"], answer["first_bad_id"], answer["problem"]) == (
        True,
        1,
        1,
        None,
        "",
    )
    assert answer["full"] is True and answer["ran_at"]


@pytest.mark.django_db
def test_schema_and_docs_are_served(user):
    client = client_for(user)
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/v1/audit/" in schema.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


@pytest.mark.django_db
def test_a_session_that_has_not_passed_the_second_factor_opens_no_api_call(developer):
    response = client_for(developer, verified=False).get("/api/v1/me/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert (
        response.json()["detail"]
        == "Finish signing in with the code from your authenticator app at /login/otp/."
    )
    assert client_for(developer).get("/api/v1/me/").status_code == 200


@pytest.mark.django_db
def test_an_auditor_without_an_authenticator_is_refused_the_api_after_the_password(auditor):
    """security M9: auditors read everything, so a password alone opens nothing for them either."""
    response = client_for(auditor, verified=False).get("/api/v1/me/")

    assert response.status_code in (401, 403)
    assert "/login/otp/" in response.json()["detail"]


def test_a_serializer_works_its_fields_out_once_and_each_gets_copies_of_its_own(monkeypatch):
    from rest_framework.serializers import ModelSerializer

    from changes.api.serializers import ChangeListSerializer

    worked_out = []
    real = ModelSerializer.get_fields

    def counting(self):
        worked_out.append(type(self))
        return real(self)

    monkeypatch.setattr(ModelSerializer, "get_fields", counting)
    monkeypatch.setattr(ChangeListSerializer, "_fields_built", None, raising=False)  # not yet worked out
    first, second = ChangeListSerializer().fields, ChangeListSerializer().fields
    assert worked_out == [ChangeListSerializer]
    assert list(first) == list(second) and "title" in first
    assert first["title"] is not second["title"] and first["title"].parent is not second["title"].parent
