"""Signing in as the audit trail keeps it, and the attacks on it: session fixation, a code replayed
or guessed, a stranger locking a signed-in person out, one person's typos locking others, and the
lockout judged on the portal clock whether it is shifted or not."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt

from portal import clock, services
from portal.models import AuditEvent, CodeFailures, SealedTOTPDevice
from tests.conftest import client_for
from tests.factories import DEFAULT_PASSWORD, UserFactory, otp_code, totp_device

LIMIT = 5


def sign_in(client, username: str, password: str = "not-the-password", **meta):
    return client.post("/login/", {"username": username, "password": password}, **meta)


def wrong(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


def unlock(api, admin, target, code: str):
    return api.post(f"/api/v1/users/{target.pk}/unlock/", {"otp": code}, format="json")


@pytest.mark.django_db
def test_signin_failure_is_audited_without_actor_or_password(client, developer):
    sign_in(client, "dev", "hunter2-secret", REMOTE_ADDR="198.51.100.7")
    sign_in(client, "nobody-here", "hunter3-secret", REMOTE_ADDR="198.51.100.7")

    events = list(AuditEvent.objects.filter(action="auth.sign_in_failed").order_by("id"))
    assert [(e.actor_id, e.after) for e in events] == [
        (None, {"username": "dev", "step": "password"}),
        (None, {"username": "nobody-here", "step": "password"}),
    ]
    assert events[0].object_id == str(developer.pk)
    assert events[1].object_repr == "nobody-here"
    assert events[0].ip == "198.51.100.7"
    everything = str(list(AuditEvent.objects.values()))
    assert "hunter2" not in everything and "hunter3" not in everything


@pytest.mark.django_db
def test_signin_lockout_is_audited_once(client, developer):
    for _ in range(LIMIT + 2):
        sign_in(client, "dev")

    assert AuditEvent.objects.filter(action="auth.sign_in_failed").count() == LIMIT
    locked = AuditEvent.objects.get(action="auth.locked_out")
    assert (locked.actor_id, locked.object_id) == (None, str(developer.pk))
    assert locked.after == {"username": "dev", "step": "password", "path": "sign_in"}


@pytest.mark.django_db
def test_signin_with_the_second_factor_is_audited_and_renews_the_session_key(client, developer):
    device = totp_device(developer)
    session = client.session  # a session the visitor holds before signing in (one planted on them)
    session["planted"] = True
    session.save()
    planted = session.session_key

    sign_in(client, "dev", DEFAULT_PASSWORD)
    after_password = client.session.session_key
    passed = client.post("/login/otp/", {"otp": otp_code(device), "next": "/"})
    after_code = client.session.session_key

    assert passed.status_code == 302
    assert len({planted, after_password, after_code}) == 3
    steps = [e.after for e in AuditEvent.objects.filter(action="auth.sign_in").order_by("id")]
    assert steps == [
        {"step": "password"},
        {"step": "second_factor", "device": "authenticator app “Test phone” (TOTP)"},
    ]
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_signin_code_cannot_be_replayed(client, developer):
    device = totp_device(developer)
    code = otp_code(device)
    sign_in(client, "dev", DEFAULT_PASSWORD)
    assert client.post("/login/otp/", {"otp": code, "next": "/"}).status_code == 302
    client.post("/logout/")

    sign_in(client, "dev", DEFAULT_PASSWORD)
    replayed = client.post("/login/otp/", {"otp": code, "next": "/"})

    assert replayed.status_code == 400
    assert "already used" in replayed.content.decode()


@pytest.mark.django_db
def test_signin_code_guessing_is_locked_even_with_the_right_code_after(client, developer):
    device = totp_device(developer)
    sign_in(client, "dev", DEFAULT_PASSWORD)
    right = int(otp_code(device))
    statuses = [
        client.post("/login/otp/", {"otp": f"{(right + n) % 1_000_000:06d}", "next": "/"}).status_code
        for n in range(1, LIMIT + 1)
    ]

    right_code = client.post("/login/otp/", {"otp": otp_code(device), "next": "/"})

    assert statuses == [400, 400, 400, 400, 429]
    assert right_code.status_code == 429
    assert "_auth_user_id" in client.session and client.get("/").status_code == 302  # not verified


@pytest.mark.django_db
def test_signin_backup_code_use_is_audited(client, developer):
    totp_device(developer)
    codes = services.mfa_backup_codes_regenerate(actor=developer)
    sign_in(client, "dev", DEFAULT_PASSWORD)

    passed = client.post("/login/otp/", {"otp": codes[0], "next": "/"})

    assert passed.status_code == 302
    event = AuditEvent.objects.get(action="auth.backup_code_used")
    assert (event.actor_id, event.after) == (developer.pk, {"codes_left": len(codes) - 1})
    assert AuditEvent.objects.filter(action="auth.sign_in").order_by("id").last().after["device"] == (
        "a backup code"
    )


@pytest.mark.django_db
def test_signin_sign_out_is_audited(client, developer):
    totp_device(developer)
    sign_in(client, "dev", DEFAULT_PASSWORD)

    client.post("/logout/")

    assert AuditEvent.objects.filter(action="auth.sign_out", actor_id=developer.pk).count() == 1


@pytest.mark.django_db
def test_signin_guessing_a_password_never_blocks_the_verified_session_codes(client, policy_admin):
    """An anonymous stranger spends the account's whole budget from many addresses; the policy
    administrator's signed-in session still acts with its codes."""
    target = UserFactory(username="target")
    for n in range(LIMIT * 5):
        sign_in(client, "policyadmin", REMOTE_ADDR=f"198.51.100.{n + 1}")
    assert sign_in(client, "policyadmin", DEFAULT_PASSWORD, REMOTE_ADDR="203.0.113.1").status_code == 429

    api = client_for(policy_admin)
    answer = unlock(api, policy_admin, target, otp_code(totp_device(policy_admin)))

    assert answer.status_code == 200


@pytest.mark.django_db
def test_signin_one_persons_wrong_codes_through_a_token_lock_only_their_codes(
    client, policy_admin, developer
):
    """fuzz D7: a token holder's wrong codes at one address locked everyone's sign-in there."""
    device = totp_device(policy_admin)
    _token, secret = services.api_token_create(actor=policy_admin, name="script", expires_in_days=1)
    target = UserFactory(username="target")
    answers = [
        client.post(
            f"/api/v1/users/{target.pk}/unlock/",
            {"otp": wrong(otp_code(device))},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {secret}",
            REMOTE_ADDR="203.0.113.7",
        ).status_code
        for _ in range(LIMIT)
    ]
    totp_device(developer)

    colleague = sign_in(client, "dev", DEFAULT_PASSWORD, REMOTE_ADDR="203.0.113.7")
    themselves = sign_in(client, "policyadmin", DEFAULT_PASSWORD, REMOTE_ADDR="203.0.113.7")

    assert answers[-1] == 429
    assert (colleague.status_code, themselves.status_code) == (302, 302)
    assert not AccessAttempt.objects.exists()
    assert CodeFailures.objects.get(user=policy_admin).failures == LIMIT
    assert AuditEvent.objects.filter(action="auth.code_failed", actor_id=policy_admin.pk).count() == LIMIT
    assert AuditEvent.objects.get(action="auth.locked_out").after["path"] == "codes"


@pytest.mark.django_db
@pytest.mark.parametrize("offset", [timedelta(0), timedelta(hours=15, minutes=48)])
def test_signin_lockout_holds_and_ends_on_the_portal_clock(client, developer, offset):
    """fuzz D8: with the clock shifted as in the demo, the lockout never triggered."""
    clock.shift(offset)
    for _ in range(LIMIT):
        sign_in(client, "dev")

    locked = sign_in(client, "dev", DEFAULT_PASSWORD)
    clock.shift(timedelta(minutes=14))
    still = sign_in(client, "dev", DEFAULT_PASSWORD)
    clock.shift(timedelta(minutes=2))
    ended = sign_in(client, "dev", DEFAULT_PASSWORD)

    assert (locked.status_code, still.status_code, ended.status_code) == (429, 429, 302)


@pytest.mark.django_db
@pytest.mark.parametrize("offset", [timedelta(0), timedelta(hours=15, minutes=48)])
def test_signin_code_lockout_holds_and_ends_on_the_portal_clock(policy_admin, offset):
    clock.shift(offset)
    target = UserFactory(username="target")
    api = client_for(policy_admin)
    device = totp_device(policy_admin)
    statuses = [unlock(api, policy_admin, target, wrong(otp_code(device))).status_code for _ in range(LIMIT)]
    clock.shift(timedelta(minutes=14))
    still = unlock(api, policy_admin, target, otp_code(device))
    clock.shift(timedelta(minutes=2))
    ended = unlock(api, policy_admin, target, otp_code(device))

    assert statuses == [403, 403, 403, 403, 429]
    assert (still.status_code, ended.status_code) == (429, 200), ended.json()


@pytest.mark.django_db
def test_signin_lockout_answers_say_retry_after(client, developer, policy_admin):
    """fuzz D12: the 429 came without Retry-After."""
    for _ in range(LIMIT):
        page = sign_in(client, "dev")
    target = UserFactory(username="target")
    api = client_for(policy_admin)
    device = totp_device(policy_admin)
    for _ in range(LIMIT):
        drf = unlock(api, policy_admin, target, wrong(otp_code(device)))

    assert page.status_code == 429 and 890 <= int(page["Retry-After"]) <= 900
    assert drf.status_code == 429 and 890 <= int(drf["Retry-After"]) <= 900
    assert drf.json()["code"] == "throttled"


@pytest.mark.django_db
def test_signin_unlock_clears_the_code_lockout_too(client, sre, policy_admin):
    device = totp_device(sre)
    api_sre = client_for(sre)
    for _ in range(LIMIT):
        api_sre.post("/api/v1/tokens/", {"name": "x", "otp": wrong(otp_code(device))}, format="json")
    assert CodeFailures.objects.get(user=sre).failures == LIMIT

    unlocked = unlock(client_for(policy_admin), policy_admin, sre, otp_code(totp_device(policy_admin)))

    assert unlocked.status_code == 200
    assert not CodeFailures.objects.filter(user=sre).exists()


@pytest.mark.django_db
def test_signin_second_factors_at_rest_open_nothing_for_a_database_reader(client, developer):
    """security M6: backup codes and authenticator keys were stored in plaintext, so a replica or
    a backup gave working second factors."""
    from django.db import connection
    from django_otp.oath import TOTP

    client.force_login(developer)
    client.get("/account/mfa/")
    device = SealedTOTPDevice.objects.get(user=developer)
    enrolled = client.post("/account/mfa/", {"otp": otp_code(device)})
    codes = re.findall(r"<li><code>([^<]+)</code></li>", enrolled.content.decode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM otp_totp_totpdevice WHERE user_id = %s", [developer.pk])
        (stored_key,) = cursor.fetchone()
        cursor.execute(
            "SELECT t.token FROM otp_static_statictoken t JOIN otp_static_staticdevice d "
            "ON d.id = t.device_id WHERE d.user_id = %s",
            [developer.pk],
        )
        stored_codes = [row[0] for row in cursor.fetchall()]

    opened = SealedTOTPDevice.objects.get(pk=device.pk)
    assert stored_key.startswith("s1:") and opened.bin_key.hex() not in stored_key
    assert len(stored_codes) == 10 and not set(stored_codes) & set(codes)
    # What a reader holds is no code: the stored digest typed in is refused, a shown code works.
    client.post("/logout/")
    sign_in(client, "dev", DEFAULT_PASSWORD)
    digest_typed = client.post("/login/otp/", {"otp": stored_codes[0], "next": "/"})
    from_unsealed_bytes = TOTP(stored_key.encode()[:20], device.step, device.t0, device.digits, 0)
    assert digest_typed.status_code == 400
    assert client.post("/login/otp/", {"otp": f"{from_unsealed_bytes.token():06d}"}).status_code == 400
    assert client.post("/login/otp/", {"otp": codes[0], "next": "/"}).status_code == 302


@pytest.mark.django_db
def test_signin_rotated_otp_key_still_opens_what_the_old_one_sealed(developer, settings):
    from portal import otp_keys

    device = SealedTOTPDevice.objects.create(user=developer, name="phone", confirmed=True)
    digest = otp_keys.backup_digest(device.pk, "abcd2345")
    key = SealedTOTPDevice.objects.get(pk=device.pk).bin_key
    settings.OTP_PREVIOUS_KEYS = [settings.OTP_ENCRYPTION_KEY]
    settings.OTP_ENCRYPTION_KEY = "a-new-otp-key-after-rotation-0123456789"

    rotated = SealedTOTPDevice.objects.get(pk=device.pk)
    assert rotated.bin_key == key
    assert digest in otp_keys.backup_digests(device.pk, "abcd2345")
    rotated.save()  # as a code checked saves it: sealed again with the new key
    assert otp_keys.sealed_with_current_key(SealedTOTPDevice.objects.get(pk=device.pk).key)
    settings.OTP_PREVIOUS_KEYS = []
    assert SealedTOTPDevice.objects.get(pk=device.pk).bin_key == key
    settings.OTP_ENCRYPTION_KEY = "yet-another-key-nobody-configured-0123456"
    with pytest.raises(otp_keys.UnsealError):
        SealedTOTPDevice.objects.get(pk=device.pk).bin_key  # noqa: B018
