"""Browser fixtures: Debian's Chromium, driven by Playwright, against pytest-django's live server.

The live server runs the real app in a thread on a transactional test database, so rows a test
commits before it opens a page are what the browser sees.
"""

import os
from pathlib import Path

# Playwright's sync API keeps an asyncio loop running in the test thread, and Django refuses ORM
# calls from a thread with a running loop. The tests make their rows before driving the browser
# and never share a connection with the server thread, so the guard has nothing to protect here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import pytest  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from config.env import VAR_DIR  # noqa: E402
from tests.factories import DEFAULT_PASSWORD, otp_code, totp_device  # noqa: E402

SCREENSHOTS = VAR_DIR / "screenshots"

CHROMIUM_ARGS = [
    # Root in a container: no user namespaces for Chromium's sandbox, and a small /dev/shm.
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    # Nothing leaves the machine: no QUIC probes, updates, sync or background fetches.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the session; `playwright install` cannot download one here."""
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(
        executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def page(browser):
    """A fresh context per test, so no cookie or session leaks from one test to the next.

    `page.console` collects what the browser logged (CSP violations show up there), and
    `page.errors` the uncaught script errors, so a test can assert the page ran cleanly.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.console = []
    page.errors = []
    page.on("console", lambda m: page.console.append(f"{m.type}: {m.text} ({m.location['url']})"))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Saves a full-page PNG under VAR_DIR/screenshots, so a person can look at what ran."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, live_server, user, password: str = DEFAULT_PASSWORD, second_factor: bool = True):
    """Signs in through the real forms, password then code, as a person with an authenticator app.

    The CSRF and Secure session cookies are exercised on the way.
    """
    device = totp_device(user) if second_factor else None
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    if device is not None and "/login/otp/" in page.url:
        page.get_by_label("Code").fill(otp_code(device))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_load_state()
    return page


@pytest.fixture
def signed_in_page(live_server, page, user):
    """The page, signed in as the plain `user` fixture."""
    return sign_in(page, live_server, user)
