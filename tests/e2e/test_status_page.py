"""The public status page in Chromium, read by someone not signed in, on a desktop and on a phone:
an incident with its public updates (never the team's notes), maintenance, the history bars of the
services on the page, and subscribing by e-mail."""

import re
from datetime import timedelta

import pytest
from django.db import transaction
from playwright.sync_api import expect

from changes.services import change_schedule
from incidents import services
from incidents.models import StatusSubscriber
from portal import clock
from portal.models import Notification
from tests.e2e.conftest import screenshot
from tests.factories import ApprovalPolicyFactory, EnvironmentFactory, ServiceFactory, approved_change

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


def test_a_customer_reads_the_status_and_subscribes(live_server, page, browser, developer, sre, own_queue):
    policy = ApprovalPolicyFactory(
        name="One approval", min_approvals=1, min_code_owner_approvals=0, required_sign_offs=[]
    )
    production = EnvironmentFactory(name="prod-eu", is_production=True, approval_policy=policy)
    checkout = ServiceFactory(name="checkout", environments=[production], on_status_page=True)
    ServiceFactory(name="search", environments=[production], on_status_page=True)
    ServiceFactory(name="web", environments=[production], on_status_page=True)
    ledger = ServiceFactory(name="ledger-internal", environments=[production])
    clock.shift(-timedelta(days=12))
    with transaction.atomic():
        past = services.incident_declare(
            actor=sre,
            title="Search results are slow",
            public_title="Search results are slow",
            severity="P2",
            public=True,
            services=[checkout],
        )
    clock.shift(timedelta(hours=3))
    with transaction.atomic():
        services.incident_note(
            actor=sre, incident=past, text="We added capacity to the search cluster.", public=True
        )
    services.incident_resolve(actor=sre, incident=past, note="search-3 was swapping")
    clock.reset()
    with transaction.atomic():
        incident = services.incident_declare(
            actor=sre,
            title="Payments fail at checkout",
            public_title="Payments fail at checkout",
            severity="P1",
            public=True,
            services=[checkout, ledger],
        )
    services.incident_acknowledge(actor=sre, incident=incident, note="db-7 disk full")
    with transaction.atomic():
        services.incident_note(
            actor=sre,
            incident=incident,
            text="Identified — A full disk on the payments database.",
            public=True,
        )
    change = approved_change(developer, production, title="Rotate the vault key", services=[checkout])
    start = (clock.now() + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    with transaction.atomic():
        change_schedule(actor=developer, change=change, start=start, end=start + timedelta(hours=2))

    page.goto(f"{live_server.url}/status/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Partial outage")
    expect(page.locator(".status-incident")).to_contain_text(
        "Update — Identified — A full disk on the payments database."
    )
    expect(page.locator(".status-incident")).to_contain_text("Affects checkout")
    expect(page.locator("body")).not_to_contain_text("db-7")
    expect(page.locator("body")).not_to_contain_text("ledger-internal")
    expect(page.locator(".status-service")).to_have_count(3)
    expect(page.locator(".status-maintenance")).to_contain_text("Affects checkout")
    expect(page.locator(".status-past")).to_contain_text("We added capacity to the search cluster.")
    expect(page.locator("body")).not_to_contain_text("search-3")
    expect(page.locator(".status-service").first.locator(".status-bar")).to_have_count(90)
    screenshot(page, "status-page.png")

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    phone.goto(f"{live_server.url}/status/")
    expect(phone.locator(".status-service").first.locator(".status-bar:visible")).to_have_count(30)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    screenshot(phone, "status-page-phone.png")
    phone.context.close()

    page.get_by_label("E-mail address").fill("reader@example.com")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.locator(".status-notice")).to_contain_text("a link to confirm the subscription is on its way")
    subscriber = StatusSubscriber.objects.get()
    sent = Notification.objects.get(recipient="reader@example.com").body
    page.goto(live_server.url + re.search(r"/status/confirm/[^/\s]+/", sent)[0])
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed")
    subscriber.refresh_from_db()
    assert subscriber.confirmed_at is not None
    assert page.console == [] and page.errors == []  # nothing the content security policy refused
