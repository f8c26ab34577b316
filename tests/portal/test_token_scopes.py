"""Making a token takes a fresh code (a stolen session alone mints none), and a token does only
what its scope allows: read only reads, write does what its owner may, ci only reports staging
runs. The API schema says all of it."""

import pytest
from rest_framework.test import APIClient

from portal import services
from portal.models import ApiToken, AuditEvent, CodeFailures
from tests.conftest import client_for, verified_login
from tests.factories import otp_code, totp_device


def with_token(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def wrong(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


@pytest.mark.django_db
def test_token_create_through_the_api_needs_a_fresh_code(developer):
    client = client_for(developer)
    device = totp_device(developer)

    without = client.post("/api/v1/tokens/", {"name": "stolen", "expires_in_days": 90}, format="json")
    wrong_code = client.post(
        "/api/v1/tokens/", {"name": "stolen", "otp": wrong(otp_code(device))}, format="json"
    )

    assert without.status_code == 403 and "`otp`" in without.json()["detail"]
    assert wrong_code.status_code == 403 and "not valid" in wrong_code.json()["detail"]
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.filter(action="api_token.create").exists()
    assert CodeFailures.objects.get(user=developer).failures == 1


@pytest.mark.django_db
def test_token_create_is_audited_with_its_scope_and_the_factor(developer):
    code = otp_code(totp_device(developer))

    made = client_for(developer).post(
        "/api/v1/tokens/", {"name": "reader", "scope": "read", "otp": code}, format="json"
    )

    assert made.status_code == 201
    assert made.json()["scope"] == "read" and made.json()["status"] == "active"
    event = AuditEvent.objects.get(action="api_token.create")
    assert event.actor_id == developer.pk
    assert event.after["scope"] == "read"
    assert event.after["confirmed_by"] == "authenticator app “Test phone” (TOTP)"


@pytest.mark.django_db
def test_token_page_needs_a_fresh_code_and_shows_scopes(client, developer):
    verified_login(client, developer)
    device = totp_device(developer)

    refused = client.post("/account/tokens/", {"name": "stolen", "expires_in_days": 30, "scope": "write"})
    made = client.post(
        "/account/tokens/",
        {"name": "nightly reader", "expires_in_days": 30, "scope": "read", "otp": otp_code(device)},
    )
    page = client.get("/account/tokens/").content.decode()

    assert refused.status_code == 400 and ApiToken.objects.filter(name="stolen").count() == 0
    assert made.status_code == 200
    assert ApiToken.objects.get(name="nightly reader").scope == ApiToken.Scope.READ
    assert '<td data-testid="token-scope"><code>read</code> Read only</td>' in page


@pytest.mark.django_db
def test_token_of_the_read_scope_only_reads(release_manager):
    _token, secret = services.api_token_create(
        actor=release_manager, name="dashboard", expires_in_days=7, scope=ApiToken.Scope.READ
    )
    client = with_token(secret)
    code = otp_code(totp_device(release_manager))

    reads = client.get("/api/v1/me/")
    writes = client.post("/api/v1/changes/", {"title": "Sneaky"}, format="json")
    sensitive = client.post("/api/v1/windows/", {"environment": "production", "otp": code}, format="json")

    assert reads.status_code == 200
    for refused in (writes, sensitive):
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("This token has the read scope")


@pytest.mark.django_db
def test_token_of_the_write_scope_does_what_its_owner_may(developer):
    _token, secret = services.api_token_create(actor=developer, name="ci", expires_in_days=7)

    answer = with_token(secret).delete(f"/api/v1/tokens/{_token.token_key}/")

    assert _token.scope == ApiToken.Scope.WRITE
    assert answer.status_code == 200 and answer.json()["status"] == "revoked"


@pytest.mark.django_db
def test_token_endpoints_are_documented_as_they_answer(developer):
    schema = client_for(developer).get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    tokens = schema["paths"]["/api/v1/tokens/"]
    revoke = schema["paths"]["/api/v1/tokens/{key}/"]["delete"]
    capacities = schema["paths"]["/api/v1/users/{id}/capacities/"]["delete"]

    created = tokens["post"]["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    created_fields = components[created.rsplit("/", 1)[1]]["properties"]
    assert "token" in created_fields
    request = tokens["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "otp" in components[request.rsplit("/", 1)[1]]["properties"]
    status = components["ApiToken"]["properties"]["status"]
    assert status.get("enum") or "$ref" in status or "allOf" in status
    assert set(revoke["responses"]) >= {"200"} and "204" not in revoke["responses"]
    assert set(capacities["responses"]) >= {"200"} and "204" not in capacities["responses"]
