"""API tokens for CI: shown once, stored as a digest, used with last use recorded, revoked, expired."""

from datetime import timedelta

import pytest
from knox.crypto import hash_token
from rest_framework.test import APIClient

from portal import clock, services
from portal.models import AccessPolicy, ApiToken, AuditEvent
from tests.conftest import client_for, verified_login
from tests.factories import otp_code, totp_device

REFUSED_TOKEN = "Invalid, expired or revoked token. Create a new one at /account/tokens/."


def with_token(secret: str, **extra) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}", **extra)
    return client


def make_token(user, days: int = 30) -> tuple[ApiToken, str]:
    return services.api_token_create(actor=user, name="CI deploy job", expires_in_days=days)


@pytest.mark.django_db
def test_token_create_shows_the_secret_once_and_stores_a_digest(developer):
    client = client_for(developer)

    code = otp_code(totp_device(developer))
    created = client.post(
        "/api/v1/tokens/", {"name": "CI deploy job", "expires_in_days": 30, "otp": code}, format="json"
    )

    assert created.status_code == 201
    secret = created.json()["token"]
    listed = client.get("/api/v1/tokens/")
    assert [t["id"] for t in listed.json()] == [created.json()["id"]]
    assert "token" not in listed.json()[0] and secret not in listed.content.decode()
    stored = ApiToken.objects.get()
    assert stored.digest == hash_token(secret) and secret not in (stored.digest, stored.token_key)
    assert AuditEvent.objects.filter(action="api_token.create", actor_id=developer.pk).count() == 1


@pytest.mark.django_db
def test_token_authenticates_with_the_authorization_header(developer):
    _token, secret = make_token(developer)

    response = with_token(secret).get("/api/v1/me/")

    assert response.status_code == 200 and response.json()["username"] == developer.username


@pytest.mark.django_db
def test_token_use_records_when_and_from_where(developer):
    token, secret = make_token(developer)

    assert with_token(secret, REMOTE_ADDR="203.0.113.7").get("/api/v1/me/").status_code == 200

    token.refresh_from_db()
    assert token.last_used_ip == "203.0.113.7"
    assert abs(token.last_used_at - clock.now()) < timedelta(seconds=30)
    listed = client_for(developer).get("/api/v1/tokens/").json()[0]
    assert listed["last_used_ip"] == "203.0.113.7" and listed["last_used_at"] is not None


@pytest.mark.django_db
def test_token_revoked_is_refused_with_a_clear_message(developer):
    token, secret = make_token(developer)

    revoked = client_for(developer).delete(f"/api/v1/tokens/{token.token_key}/")
    response = with_token(secret).get("/api/v1/me/")

    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert response.json() == {"detail": REFUSED_TOKEN, "code": "token_refused"}
    assert ApiToken.objects.filter(pk=token.pk).exists()  # kept for the record


@pytest.mark.django_db
def test_token_expired_is_refused_with_a_clear_message(developer):
    _token, secret = make_token(developer, days=30)
    clock.shift(timedelta(days=30, minutes=1))

    response = with_token(secret).get("/api/v1/me/")

    assert response.json() == {"detail": REFUSED_TOKEN, "code": "token_refused"}


@pytest.mark.django_db
def test_token_revoked_answers_401(developer):
    token, secret = make_token(developer)
    services.api_token_revoke(actor=developer, token=token)

    response = with_token(secret).get("/api/v1/me/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_token_expired_answers_401(developer):
    _token, secret = make_token(developer, days=1)
    clock.shift(timedelta(days=2))

    assert with_token(secret).get("/api/v1/me/").status_code == 401


@pytest.mark.django_db
def test_token_list_shows_only_the_callers_own(developer, qa):
    mine, _ = make_token(developer)
    make_token(qa)

    listed = client_for(developer).get("/api/v1/tokens/").json()

    assert [t["id"] for t in listed] == [mine.token_key]


@pytest.mark.django_db
def test_token_revoke_by_someone_else_is_not_found(developer, qa):
    token, secret = make_token(developer)

    response = client_for(qa).delete(f"/api/v1/tokens/{token.token_key}/")

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert with_token(secret).get("/api/v1/me/").status_code == 200


@pytest.mark.django_db
def test_token_cannot_create_tokens(developer):
    _token, secret = make_token(developer)

    response = with_token(secret).post("/api/v1/tokens/", {"name": "another", "expires_in_days": 1})

    assert response.status_code == 403
    assert response.json()["detail"] == "A token cannot make tokens: sign in to the portal to create one."
    assert ApiToken.objects.count() == 1


@pytest.mark.django_db
def test_token_expiry_beyond_the_policy_maximum_is_a_400(developer):
    policy = AccessPolicy.current()
    policy.api_token_max_days = 14
    policy.save()
    client = client_for(developer)

    device = totp_device(developer)
    too_long = client.post(
        "/api/v1/tokens/", {"name": "CI", "expires_in_days": 15, "otp": otp_code(device)}, format="json"
    )
    longest = client.post(
        "/api/v1/tokens/", {"name": "CI", "expires_in_days": 14, "otp": otp_code(device)}, format="json"
    )

    assert too_long.status_code == 400
    assert "1 to 14 days" in too_long.json()["detail"]
    assert longest.status_code == 201
    assert ApiToken.objects.count() == 1


@pytest.mark.django_db
def test_token_of_a_deactivated_user_is_refused(developer):
    _token, secret = make_token(developer)
    developer.is_active = False
    developer.save()

    response = with_token(secret).get("/api/v1/me/")

    assert response.status_code == 401 and response.json()["code"] == "token_refused"


@pytest.mark.django_db
def test_token_page_shows_the_secret_once(client, developer):
    verified_login(client, developer)

    code = otp_code(totp_device(developer))
    created = client.post("/account/tokens/", {"name": "CI deploy job", "expires_in_days": 30, "otp": code})
    secret = created.context["created"]["secret"]
    again = client.get("/account/tokens/")

    assert created.status_code == 200 and secret in created.content.decode()
    assert again.status_code == 200 and secret not in again.content.decode()
    assert "CI deploy job" in again.content.decode()
