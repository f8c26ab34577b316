"""The second factor in Chromium: enrol an authenticator from the page, sign in with it, and be refused
a sensitive action without a valid code. Codes are worked out from the secret the page shows."""

import re
from base64 import b32decode
from urllib.parse import parse_qs, urlparse

import pytest
from django_otp.oath import totp
from playwright.sync_api import expect

from portal import services
from portal.models import AuditEvent, BreakGlassSession
from portal.roles import Role
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


def key_from(otpauth_uri: str) -> bytes:
    secret = parse_qs(urlparse(otpauth_uri).query)["secret"][0]
    return b32decode(secret + "=" * (-len(secret) % 8))


def code(key: bytes, *, steps_ahead: int = 0) -> str:
    """What an authenticator app shows now, or that many 30-second steps later (no waiting)."""
    return f"{totp(key, step=30, t0=0, digits=6, drift=steps_ahead):06d}"


def test_mfa_enrol_sign_in_with_the_code_and_be_refused_break_glass_without_one(
    live_server, page, developer, policy_admin
):
    base = live_server.url
    sign_in(page, live_server, developer, second_factor=False)

    # A developer can approve, so the portal holds them at enrolment before anything else.
    expect(page).to_have_url(f"{base}/account/mfa/")
    expect(page.get_by_label("QR code for your authenticator app").locator("svg")).to_be_visible()
    page.get_by_text("Can't scan? Enter this instead").click()
    uri = page.get_by_test_id("otpauth-uri").inner_text()
    assert uri.startswith("otpauth://totp/")
    key = key_from(uri)
    page.get_by_label("Code", exact=True).fill(code(key))
    screenshot(page, "mfa-enrol.png")
    page.get_by_role("button", name="Turn on").click()

    expect(page.get_by_role("heading", name="Save your backup codes")).to_be_visible()
    expect(page.get_by_test_id("backup-codes").get_by_role("listitem")).to_have_count(10)
    screenshot(page, "backup-codes.png")
    assert AuditEvent.objects.filter(action="mfa.totp_confirm", actor_id=developer.pk).count() == 1

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/login/")

    # Password, then the code; the code of the step just used is spent, so the app's next one.
    page.get_by_label("Username").fill(developer.username)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/login/otp/\?next=%2F$"))
    page.get_by_label("Code", exact=True).fill(code(key, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_role("heading", name=f"Good to see you, {developer.first_name}")).to_be_visible()

    # A policy administrator makes them an administrator; opening break-glass takes a current code.
    services.user_role_set(actor=policy_admin, user=developer, role=Role.ADMIN)
    page.reload()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Break-glass").click()
    expect(page).to_have_url(f"{base}/break-glass/")
    page.get_by_label("Reason").fill("Primary database is down and needs a manual failover")

    page.get_by_role("button", name="Open break-glass").click()  # no code: the browser holds the form
    expect(page).to_have_url(f"{base}/break-glass/")
    assert page.get_by_label("Code", exact=True).evaluate("input => input.validity.valueMissing")

    page.get_by_label("Code", exact=True).fill(f"{(int(code(key)) + 500_000) % 1_000_000:06d}")
    page.get_by_role("button", name="Open break-glass").click()
    expect(
        page.get_by_role("alert").filter(has_text="That code is not valid or was already used")
    ).to_be_visible()
    expect(page.get_by_role("cell", name="No break-glass sessions.")).to_be_visible()
    expect(page.locator(".break-glass-banner")).to_have_count(0)
    screenshot(page, "break-glass-refused.png")
    assert not BreakGlassSession.objects.exists()
