"""The whole path in a browser: a form on the web, a task in a real worker, the page updating live."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def test_test_notification_is_delivered_by_the_worker_and_shown_live(
    live_server, page, sre, celery_worker_process
):
    sign_in(page, live_server, sre)
    card = page.locator("#notifications")
    card.get_by_label("Channel").select_option("slack")
    card.get_by_label("Recipient").fill("#production-alerts")
    card.get_by_role("button", name="Send test message").click()

    expect(page.get_by_role("status")).to_contain_text("Queued a test message to #production-alerts")
    row = card.get_by_role("row").filter(has_text="#production-alerts")
    # No reload: the list polls, and the worker (Slack not configured there) logs the message.
    expect(row).to_contain_text("Logged only", timeout=20_000)
    screenshot(page, "notification-delivered.png")
