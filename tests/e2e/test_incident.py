"""An incident in Chromium, as the SRE on call runs it: declared on the live release, acknowledged,
its deployment rolled back from the incident with a code, resolved, its post-mortem written and
completed with an action item; then the public status page shows it to someone not signed in."""

import re

import pytest
from playwright.sync_api import expect

from catalogue.models import Service
from deployments.models import Deployment
from incidents.models import Incident
from tests.deployments.test_releases import production, release  # noqa: F401 (a fixture)
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import otp_code, totp_device

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


def test_declare_acknowledge_roll_back_resolve_and_write_the_post_mortem(
    live_server,
    page,
    browser,
    production,  # noqa: F811
    sre,
    own_queue,
):
    release(production, "v1.0.0", "succeeded")
    live = release(production, "v1.1.0", "succeeded")
    Service.objects.filter(name="web").update(on_status_page=True)
    sign_in(page, live_server, sre)

    page.goto(f"{live_server.url}/incidents/")
    declare = page.locator("form", has=page.get_by_role("button", name="Declare and page"))
    declare.get_by_label("Title", exact=True).fill("Checkout fails for one order in five")
    declare.get_by_label("Severity").select_option("P1")
    declare.get_by_label("Services").select_option(label="web")
    declare.get_by_label("Deployment").select_option(str(live.pk))
    declare.get_by_label("Summary").fill("Payments time out since v1.1.0 went live.")
    declare.get_by_label("Show it on the public status page").check()
    declare.get_by_label("Public title").fill("Checkout fails for one order in five")
    declare.get_by_role("button", name="Declare and page").click()
    incident = Incident.objects.get()
    expect(page).to_have_url(f"{live_server.url}/incidents/{incident.pk}/")
    expect(page.locator(".messages")).to_contain_text(f"{incident.number} declared and paged.")
    expect(page.locator(".timeline")).to_contain_text("P1 declared: Checkout fails for one order in five")
    expect(page.locator(".timeline")).to_contain_text("Paged on PagerDuty.")
    screenshot(page, "incident-declared.png")

    page.locator("form.steps").get_by_label("Note").fill("Payments time out; rolling back v1.1.0.")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".page-head")).to_contain_text("Acknowledged")
    expect(page.locator(".facts")).to_contain_text(sre.display_name)  # the commander
    note = page.locator("form.note")
    note.get_by_label("Note").fill("Identified — Some payments time out; we are rolling back the release.")
    note.get_by_label("Post it on the public status page too").check()
    note.get_by_role("button", name="Add note").click()
    expect(page.locator(".timeline")).to_contain_text("we are rolling back the release.")

    customer = browser.new_context().new_page()  # nobody signed in
    customer.goto(f"{live_server.url}/status/")
    expect(customer.get_by_role("heading", level=1)).to_have_text("Partial outage")
    expect(customer.locator(".status-service", has_text="web")).to_contain_text("Partial outage")
    expect(customer.locator(".status-incident")).to_contain_text("Checkout fails for one order in five")
    expect(customer.locator(".status-incident")).to_contain_text(
        "Update — Identified — Some payments time out; we are rolling back the release."
    )
    expect(customer.locator(".status-incident")).to_contain_text("Investigating")
    expect(customer.locator("body")).not_to_contain_text("rolling back v1.1.0")  # the step's note
    expect(customer.locator("body")).not_to_contain_text(sre.display_name)
    screenshot(customer, "incident-on-the-status-page.png")

    back = page.locator("#roll-back")
    expect(back.locator("h2")).to_have_text("Roll back v1.1.0")
    back.get_by_label("Reason").fill("Payments time out since v1.1.0")
    back.get_by_label("Code", exact=True).fill(otp_code(totp_device(sre)))
    back.get_by_role("button", name="Roll back").click()
    expect(page.locator(".messages")).to_contain_text(
        "Rolling back: traffic goes back to the previous colour."
    )
    expect(page.locator(".timeline")).to_contain_text(
        f"Rollback of v1.1.0 in {production} asked by {sre.display_name}: Payments time out since v1.1.0"
    )
    live.refresh_from_db()
    assert live.rollback_requested and live.state == Deployment.State.ROLLING_BACK and live.rollback_by == sre
    screenshot(page, "incident-rolled-back.png")

    page.locator("form.steps").get_by_label("Note").fill("Traffic back on v1.0.0; errors gone.")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator(".page-head")).to_contain_text("Resolved")
    page.get_by_role("link", name="due by").click()

    expect(page.locator("h1")).to_have_text(f"Post-mortem of {incident.number}")
    expect(page.get_by_label("Timeline")).to_have_value(re.compile("Rollback of v1.1.0 in .* asked by"))
    page.get_by_label("Summary").fill("Checkout failed for one order in five for 20 minutes after v1.1.0.")
    page.get_by_label("Impact").fill("About 300 failed orders; customers retried.")
    page.get_by_label("Root cause").fill("A missing index made the payment query time out under load.")
    page.get_by_label("What went well").fill("The rollback from the incident took one click.")
    page.get_by_label("What went badly").fill("The load test did not cover payments.")
    page.get_by_role("button", name="Save and complete").click()
    expect(page.locator(".messages")).to_contain_text("Post-mortem completed.")
    expect(page.locator(".page-head")).to_contain_text("Completed")

    items = page.locator("#action-items")
    items.get_by_label("Action item").fill("Add the payments index and a load test for it")
    items.get_by_label("Owner").select_option(label=sre.display_name)
    items.get_by_label("Due on").fill("2099-01-31")
    items.get_by_role("button", name="Add action item").click()
    expect(items).to_contain_text("Add the payments index and a load test for it")
    screenshot(page, "incident-postmortem.png")
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.postmortem.completed_at is not None

    customer.goto(f"{live_server.url}/status/")
    expect(customer.get_by_role("heading", level=1)).to_have_text("All systems operational")
    expect(customer.locator(".status-past")).to_contain_text("Checkout fails for one order in five")
    expect(customer.locator(".status-past")).to_contain_text("This incident has been resolved.")
    expect(customer.locator("body")).not_to_contain_text("Traffic back on v1.0.0")  # the step's note
    customer.context.close()

    page.goto(f"{live_server.url}/incidents/")
    row = page.locator("tr", has_text=incident.number)
    expect(row).to_contain_text("Resolved")
    screenshot(page, "incident-list.png")
    assert page.errors == []
