"""The second factor: enrolment with a QR code, backup codes, the code step at sign-in, and who is
held at that step. Codes come from tests.factories.otp_code, which never waits for the clock."""

import re
import time

import pytest
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import services
from portal.mfa import totp_code
from portal.models import AuditEvent
from tests.factories import DEFAULT_PASSWORD, otp_code, totp_device

BACKUP_CODE = re.compile(r"<li><code>([^<]+)</code></li>")


def sign_in_with_password(client, user):
    response = client.post("/login/", {"username": user.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302, response.content.decode()
    return response


def wrong(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


@pytest.mark.django_db
def test_mfa_setup_shows_a_qr_code_and_the_otpauth_uri(client, developer):
    client.force_login(developer)

    response = client.get("/account/mfa/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in body and 'aria-label="QR code for your authenticator app"' in body
    uri = re.search(r'data-testid="otpauth-uri">([^<]+)<', body).group(1)
    assert uri.startswith("otpauth://totp/") and "secret=" in uri and "issuer=Greenlight" in uri
    assert TOTPDevice.objects.get(user=developer).confirmed is False


@pytest.mark.django_db
def test_mfa_setup_refuses_a_wrong_code_with_a_message(client, developer):
    client.force_login(developer)
    client.get("/account/mfa/")
    device = TOTPDevice.objects.get(user=developer)

    response = client.post("/account/mfa/", {"otp": wrong(otp_code(device))})

    assert response.status_code == 400
    assert "That code is not valid or was already used" in response.content.decode()
    device.refresh_from_db()
    assert device.confirmed is False
    assert not AuditEvent.objects.filter(action="mfa.totp_confirm").exists()


@pytest.mark.django_db
def test_mfa_setup_right_code_confirms_and_shows_ten_backup_codes_once(client, developer):
    client.force_login(developer)
    client.get("/account/mfa/")
    device = TOTPDevice.objects.get(user=developer)

    response = client.post("/account/mfa/", {"otp": otp_code(device)})

    codes = BACKUP_CODE.findall(response.content.decode())
    assert response.status_code == 200 and len(codes) == 10 and len(set(codes)) == 10
    device.refresh_from_db()
    assert device.confirmed is True
    assert AuditEvent.objects.filter(action="mfa.totp_confirm", actor_id=developer.pk).count() == 1
    again = client.get("/account/mfa/").content.decode()
    assert "Make new backup codes" in again and not any(code in again for code in codes)
    assert client.get("/").status_code == 200  # the session passed the second factor


@pytest.mark.django_db
def test_mfa_backup_code_works_once(client, developer):
    totp_device(developer)
    code = services.mfa_backup_codes_regenerate(actor=developer)[0]

    sign_in_with_password(client, developer)
    first = client.post("/login/otp/", {"otp": code, "next": "/"})
    client.post("/logout/")
    sign_in_with_password(client, developer)
    second = client.post("/login/otp/", {"otp": code, "next": "/"})

    assert first.status_code == 302 and first["Location"] == "/"
    assert second.status_code == 400
    assert "That code is not valid or was already used" in second.content.decode()
    assert StaticToken.objects.filter(device__user=developer).count() == 9


@pytest.mark.django_db
def test_mfa_login_asks_for_the_code_after_the_password(client, developer):
    device = totp_device(developer)

    sign_in_with_password(client, developer)
    held = client.get("/")
    verified = client.post("/login/otp/", {"otp": otp_code(device), "next": "/"})

    assert held.status_code == 302 and held["Location"] == "/login/otp/?next=%2F"
    assert verified.status_code == 302 and verified["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_mfa_login_refuses_a_wrong_code(client, developer):
    device = totp_device(developer)
    sign_in_with_password(client, developer)

    response = client.post("/login/otp/", {"otp": wrong(otp_code(device)), "next": "/"})

    assert response.status_code == 400
    assert "That code is not valid or was already used" in response.content.decode()
    assert client.get("/")["Location"].startswith("/login/otp/")


@pytest.mark.django_db
def test_mfa_developer_without_device_is_sent_to_enrolment_first(client, developer):
    sign_in_with_password(client, developer)

    for path in ("/", "/account/tokens/", "/break-glass/", "/audit/"):
        response = client.get(path)
        assert (path, response.status_code, response["Location"]) == (path, 302, "/account/mfa/")


@pytest.mark.django_db
def test_mfa_auditor_without_device_is_sent_to_enrolment_first(client, auditor):
    """security M9: auditors read everything, so they sign in with a second factor too."""
    sign_in_with_password(client, auditor)

    for path in ("/", "/account/tokens/", "/audit/"):
        response = client.get(path)
        assert (path, response.status_code, response["Location"]) == (path, 302, "/account/mfa/")
    assert client.get("/api/v1/audit/").status_code in (401, 403)


@pytest.mark.django_db
def test_mfa_used_code_cannot_be_used_again(client, developer):
    device = totp_device(developer)
    code = otp_code(device)
    sign_in_with_password(client, developer)
    assert client.post("/login/otp/", {"otp": code, "next": "/"}).status_code == 302
    client.post("/logout/")

    sign_in_with_password(client, developer)
    response = client.post("/login/otp/", {"otp": code, "next": "/"})

    assert response.status_code == 400
    assert "already used" in response.content.decode()


@pytest.mark.django_db
def test_mfa_backup_codes_regenerate_voids_the_old_ones(client, developer):
    device = totp_device(developer)
    old = services.mfa_backup_codes_regenerate(actor=developer)
    sign_in_with_password(client, developer)
    client.post("/login/otp/", {"otp": otp_code(device), "next": "/"})
    audited_before = AuditEvent.objects.filter(action="mfa.backup_codes_regenerate").count()

    response = client.post("/account/mfa/backup-codes/", {"otp": otp_code(device)})

    new = BACKUP_CODE.findall(response.content.decode())
    assert response.status_code == 200 and len(new) == 10 and not set(new) & set(old)
    # Kept as keyed digests (security M6), never as the codes shown.
    stored = set(StaticToken.objects.filter(device__user=developer).values_list("token", flat=True))
    assert len(stored) == 10 and not stored & (set(new) | set(old))
    assert all(re.fullmatch(r"[0-9a-f]{16}", token) for token in stored)
    assert AuditEvent.objects.filter(action="mfa.backup_codes_regenerate").count() == audited_before + 1


@pytest.mark.django_db
def test_mfa_totp_code_gives_an_accepted_code_every_time(developer, monkeypatch):
    middle_of_a_step = (int(time.time()) // 30) * 30 + 15
    monkeypatch.setattr(time, "time", lambda: middle_of_a_step)  # no step boundary mid-test
    device = totp_device(developer)

    assert [device.verify_token(totp_code(device)) for _ in range(3)] == [True, True, True]
