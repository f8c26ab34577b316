"""Sign-in, the overview and the audit trail, as a person sees them in Chromium."""

import re

import pytest
from django.db import transaction
from playwright.sync_api import expect

from portal.services import audit_record
from tests.e2e.conftest import screenshot, sign_in

# The audit page reads through the `replica` alias (a test mirror of `default`), so the live
# server needs every alias, and its own committed view of the rows: hence a transactional db.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_ran_cleanly(page, allow: tuple[str, ...] = ()):
    """No script error and no console error (a CSP violation is one), bar those expected."""
    errors = [m for m in page.console if m.startswith("error:") and not any(a in m for a in allow)]
    assert errors == [] and page.errors == [], (errors, page.errors)


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, path


def test_home_anonymous_lands_on_sign_in(live_server, page):
    page.goto(f"{live_server.url}/")

    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    expect(page.get_by_role("heading", name="Sign in to Greenlight")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    assert_ran_cleanly(page)


def test_home_signed_in_user_sees_overview(signed_in_page, user, live_server):
    page = signed_in_page

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name=f"Good to see you, {user.first_name}")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link", name="API")).to_be_visible()
    # The plain user lacks the audit view permission, so the nav does not offer the trail.
    expect(nav.get_by_role("link", name="Audit trail")).to_have_count(0)
    assert_png(screenshot(page, "home.png"))
    assert_ran_cleanly(page)


def test_home_wrong_password_shows_form_error(live_server, page, user):
    sign_in(page, live_server, user, password="not-the-password")

    expect(page).to_have_url(f"{live_server.url}/login/")
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password.")
    assert_png(screenshot(page, "login-error.png"))
    assert_ran_cleanly(page)


def test_home_audit_viewer_opens_audit_trail_from_nav(live_server, page, audit_viewer):
    with transaction.atomic():
        audit_record(
            actor=audit_viewer,
            action="demo.thing",
            object_type="demo",
            object_id="1",
            object_repr="Demo thing",
            after={"x": 1},
        )
    sign_in(page, live_server, audit_viewer)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit trail").click()

    expect(page).to_have_url(f"{live_server.url}/audit/")
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="demo.thing")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Demo thing")
    expect(row).to_contain_text(audit_viewer.display_name)
    assert_png(screenshot(page, "audit.png"))
    assert_ran_cleanly(page)


def test_home_audit_trail_forbidden_without_permission(live_server, page, user):
    sign_in(page, live_server, user)

    response = page.goto(f"{live_server.url}/audit/")

    assert response.status == 403
    expect(page.get_by_role("heading", name="You can't do this")).to_be_visible()
    reason = "You need the right to read the audit trail (audit.view)."
    expect(page.get_by_text(reason)).to_be_visible()
    # Chromium logs the 403 document itself as a failed resource; that one is expected.
    assert_ran_cleanly(page, allow=("status of 403",))
