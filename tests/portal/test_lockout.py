"""Lockout: wrong passwords (and the codes typed after them) counted per account and client address
together, within an account's and an address's budgets; a signed-in person's wrong codes counted
for that person alone. Lifted by the portal clock's cool-off or by a policy administrator. Nobody
sleeps: the clock is shifted."""

import ipaddress
import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings

from portal import clock, lockout
from portal.models import AuditEvent
from tests.conftest import client_for
from tests.factories import DEFAULT_PASSWORD, UserFactory, otp_code, totp_device

LIMIT = 5  # LOGIN_FAILURE_LIMIT's default, the one the process asks for
COOL_OFF = timedelta(minutes=15)


def sign_in(client, username: str, password: str = "not-the-password", **meta):
    return client.post("/login/", {"username": username, "password": password}, **meta)


def fail(client, username: str, times: int, **meta) -> list[int]:
    return [sign_in(client, username, **meta).status_code for _ in range(times)]


def retry_time(response) -> str:
    match = re.search(r"Try again after (\d\d:\d\d) UTC", response.content.decode())
    assert match, response.content.decode()
    return match.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


def test_lockout_limit_is_five():
    assert settings.AXES_FAILURE_LIMIT == LIMIT
    assert settings.AXES_COOLOFF_TIME == COOL_OFF


@pytest.mark.django_db
def test_lockout_after_the_limit_answers_429_saying_when_to_retry(client, developer):
    assert fail(client, "dev", LIMIT) == [200, 200, 200, 200, 429]

    refused = sign_in(client, "dev", DEFAULT_PASSWORD)

    assert refused.status_code == 429
    last = AccessAttempt.objects.get(username="dev").attempt_time
    assert retry_time(refused) == f"{last + COOL_OFF:%H:%M}"
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_lockout_locks_the_guessing_address_not_the_owner_elsewhere(client, developer):
    fail(client, "dev", LIMIT, REMOTE_ADDR="198.51.100.1")

    guesser = sign_in(client, "dev", DEFAULT_PASSWORD, REMOTE_ADDR="198.51.100.1")
    owner = sign_in(client, "dev", DEFAULT_PASSWORD, REMOTE_ADDR="198.51.100.2")

    assert guesser.status_code == 429
    assert owner.status_code == 302


@pytest.mark.django_db
def test_lockout_guesses_at_other_accounts_leave_a_neighbour_signing_in(client, developer):
    for n in range(LIMIT):
        sign_in(client, f"guess{n}", REMOTE_ADDR="198.51.100.1")

    neighbour = sign_in(client, "dev", DEFAULT_PASSWORD, REMOTE_ADDR="198.51.100.1")

    assert neighbour.status_code == 302


@pytest.mark.django_db
def test_lockout_an_address_has_a_budget_across_accounts(client, developer):
    for n in range(LIMIT * lockout.ADDRESS_BUDGET):
        sign_in(client, f"guess{n % 20}", REMOTE_ADDR="198.51.100.1")

    same_address = sign_in(client, "dev", DEFAULT_PASSWORD, REMOTE_ADDR="198.51.100.1")
    other_address = sign_in(client, "dev", DEFAULT_PASSWORD, REMOTE_ADDR="198.51.100.2")

    assert same_address.status_code == 429
    assert other_address.status_code == 302


@pytest.mark.django_db
def test_lockout_an_account_has_a_budget_across_addresses(client, developer):
    """OWASP ASVS 2.2.1: no more than 100 failed attempts an hour on one account, however many
    addresses they come from (25 per 15-minute cool-off)."""
    for n in range(LIMIT * lockout.ACCOUNT_BUDGET):
        sign_in(client, "dev", REMOTE_ADDR=f"198.51.100.{n + 1}")

    fresh_address = sign_in(client, "dev", DEFAULT_PASSWORD, REMOTE_ADDR="203.0.113.9")

    assert fresh_address.status_code == 429
    assert "Try again after" in fresh_address.content.decode()


@pytest.mark.django_db
def test_lockout_ignores_forwarded_for_from_an_untrusted_client(client, developer):
    for n in range(LIMIT):
        sign_in(client, "dev", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")

    response = sign_in(
        client, "dev", DEFAULT_PASSWORD, REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.99"
    )

    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.1"}


@pytest.mark.django_db
def test_lockout_counts_the_forwarded_client_behind_a_trusted_proxy(client, developer, settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    fail(client, "dev", LIMIT, HTTP_X_FORWARDED_FOR="203.0.113.5", **proxy)

    locked = sign_in(client, "dev", DEFAULT_PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5", **proxy)
    neighbour = sign_in(client, "dev", DEFAULT_PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6", **proxy)

    assert locked.status_code == 429
    assert neighbour.status_code == 302


@pytest.mark.django_db
def test_lockout_counts_wrong_codes_at_sign_in(client, developer):
    device = totp_device(developer)
    assert sign_in(client, "dev", DEFAULT_PASSWORD).status_code == 302

    statuses = [
        client.post("/login/otp/", {"otp": wrong(otp_code(device)), "next": "/"}).status_code
        for _ in range(LIMIT)
    ]
    client.post("/logout/")
    password_again = sign_in(client, "dev", DEFAULT_PASSWORD)

    assert statuses == [400, 400, 400, 400, 429]
    assert password_again.status_code == 429
    retry_time(password_again)


def wrong_api_codes(policy_admin, times: int) -> list:
    target = UserFactory(username="target")
    api = client_for(policy_admin)
    device = totp_device(policy_admin)
    url = f"/api/v1/users/{target.pk}/unlock/"
    return [api.post(url, {"otp": wrong(otp_code(device))}, format="json") for _ in range(times)]


@pytest.mark.django_db
def test_lockout_counts_wrong_codes_on_api_actions_for_the_caller_alone(client, policy_admin, developer):
    answers = wrong_api_codes(policy_admin, LIMIT + 1)

    assert [a.status_code for a in answers] == [403, 403, 403, 403, 429, 429]
    assert answers[-1].json()["code"] == "throttled"
    assert "Try again after" in answers[-1].json()["detail"]
    # Signing in is another path: neither the caller nor a colleague at the same address is locked.
    assert sign_in(client, "policyadmin", DEFAULT_PASSWORD).status_code == 302
    assert sign_in(client, "dev", DEFAULT_PASSWORD).status_code == 302
    assert not AccessAttempt.objects.exists()


@pytest.mark.django_db
def test_lockout_api_call_that_reaches_the_limit_answers_json(policy_admin):
    reaching = wrong_api_codes(policy_admin, LIMIT)[-1]

    assert reaching.status_code == 429
    assert reaching["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_lockout_right_password_does_not_wipe_wrong_codes(client, developer):
    device = totp_device(developer)
    sign_in(client, "dev", DEFAULT_PASSWORD)
    for _ in range(LIMIT - 1):
        client.post("/login/otp/", {"otp": wrong(otp_code(device)), "next": "/"})
    client.post("/logout/")
    sign_in(client, "dev", DEFAULT_PASSWORD)

    fifth_wrong_code = client.post("/login/otp/", {"otp": wrong(otp_code(device)), "next": "/"})

    assert fifth_wrong_code.status_code == 429


@pytest.mark.django_db
def test_lockout_holds_until_the_cool_off_ends(client, developer):
    fail(client, "dev", LIMIT)
    clock.shift(timedelta(minutes=14))

    assert sign_in(client, "dev", DEFAULT_PASSWORD).status_code == 429


@pytest.mark.django_db
def test_lockout_ends_by_itself_after_the_cool_off(client, developer):
    fail(client, "dev", LIMIT)
    clock.shift(timedelta(minutes=16))

    response = sign_in(client, "dev", DEFAULT_PASSWORD)

    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == developer.pk


@pytest.mark.django_db
def test_lockout_policy_admin_unlocks_earlier_with_a_code(client, developer, policy_admin):
    away = {"REMOTE_ADDR": "198.51.100.1"}  # not the administrator's address, which would be locked too
    fail(client, "dev", LIMIT, **away)
    api = client_for(policy_admin)

    without_code = api.post(f"/api/v1/users/{developer.pk}/unlock/", {}, format="json")
    still_locked = sign_in(client, "dev", DEFAULT_PASSWORD, **away).status_code
    unlocked = api.post(
        f"/api/v1/users/{developer.pk}/unlock/", {"otp": otp_code(totp_device(policy_admin))}, format="json"
    )
    after = sign_in(client, "dev", DEFAULT_PASSWORD, **away)

    assert (without_code.status_code, still_locked) == (403, 429)
    assert unlocked.status_code == 200
    assert after.status_code == 302
    event = AuditEvent.objects.get(action="user.unlock")
    assert (event.actor_id, event.object_id) == (policy_admin.pk, str(developer.pk))
    assert event.after == {"attempts_cleared": 1}
