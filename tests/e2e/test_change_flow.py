"""A change request carried through approval in Chromium, by the people who would do it."""

import pytest
from playwright.sync_api import expect

from changes.models import ChangeRequest
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import (
    EnvironmentFactory,
    ServiceFactory,
    UserFactory,
    change_create,
    otp_code,
    totp_device,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


@pytest.fixture
def team(db):
    EnvironmentFactory()
    ServiceFactory(code_owners=["alex-owner"])
    return {
        "dana": UserFactory(username="dana", first_name="Dana"),
        "alex": UserFactory(username="alex", first_name="Alex", github_login="alex-owner"),
        "bo": UserFactory(username="bo", first_name="Bo", role="qa"),
        "casey": UserFactory(username="casey", first_name="Casey", role="devops"),
        "sam": UserFactory(username="sam", first_name="Sam", capacities=["security"]),
        "pat": UserFactory(username="pat", first_name="Pat", capacities=["product"]),
        "lee": UserFactory(username="lee", first_name="Lee", capacities=["engineering_lead"]),
    }


@pytest.fixture
def as_person(browser, live_server):
    """Opens a browser of a person's own, signed in with password and code; all closed at the end."""
    contexts = []

    def open_as(user):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        sign_in(page, live_server, user)
        return page

    yield open_as
    for context in contexts:
        context.close()


def decide(as_person, live_server, user, change, decision="Approve", capacity=None, comment=""):
    page = as_person(user)
    page.goto(f"{live_server.url}/changes/{change.pk}/")
    form = page.locator("#decide")
    form.get_by_label(decision, exact=True).check()
    if capacity:
        form.get_by_label("Sign off as").select_option(label=capacity)
    if comment:
        form.get_by_label("Comment").fill(comment)
    form.get_by_label("Code").fill(otp_code(totp_device(user)))
    form.get_by_role("button", name="Record decision").click()
    expect(page.get_by_role("status")).to_contain_text("Your decision is recorded.")
    return page


def test_change_is_filed_ticked_and_approved_by_the_quorum(as_person, live_server, team):
    page = as_person(team["dana"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Changes").click()
    page.get_by_role("link", name="File a change").click()
    page.get_by_label("Title").fill("Faster render queue")
    page.get_by_label("Environment").select_option(label="Production")
    page.get_by_label("Services").select_option(label="web")
    page.get_by_label("Description").fill("Moves rendering to the new queue.")
    page.get_by_label("Rollback plan").fill("Switch traffic back to blue; the queue drains by itself.")
    page.get_by_role("button", name="File as draft").click()
    expect(page.get_by_role("status")).to_contain_text("filed as a draft")
    change = ChangeRequest.objects.get()
    expect(page.locator(".badge.big")).to_have_text("Draft")

    item = page.locator(".check").filter(has_text="No critical bugs reported")
    item.get_by_label("Evidence for No critical bugs reported").fill("https://tracker.example.com/q/critical")
    item.get_by_role("button", name="Mark done").click()
    expect(page.locator(".check.done").filter(has_text="No critical bugs reported")).to_contain_text(
        "by Dana"
    )
    expect(page.locator(".check").filter(has_text="All tests passing in Staging")).to_contain_text("waiting")
    expect(page.locator(".check").filter(has_text="Database backup completed")).to_contain_text("waiting")
    expect(page.locator(".check").filter(has_text="Post-deployment report completed")).to_contain_text(
        "waiting"
    )  # for the deployment's monitoring to prove it
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator(".badge.big")).to_have_text("Submitted")
    screenshot(page, "change-submitted.png")

    decide(as_person, live_server, team["alex"], change)  # the code owner
    decide(as_person, live_server, team["bo"], change)
    decide(as_person, live_server, team["casey"], change)
    decide(as_person, live_server, team["sam"], change, capacity="Security sign-off")
    decide(as_person, live_server, team["pat"], change, capacity="Product sign-off")
    last = decide(as_person, live_server, team["lee"], change, capacity="Engineering lead sign-off")

    expect(last.locator(".badge.big")).to_have_text("Approved")
    expect(last.locator(".decisions")).to_contain_text("code owner")
    expect(last.locator(".gates li").filter(has_text="Approvals")).to_contain_text("6 of 3 approvals")
    screenshot(last, "change-approved.png")
    change.refresh_from_db()
    assert change.status == "approved"


def test_requesters_edit_dismisses_earlier_decisions(as_person, live_server, team):
    from django.db import transaction

    from changes.services import change_submit

    change = change_create(team["dana"])
    with transaction.atomic():
        change_submit(actor=team["dana"], change=change)
    decide(as_person, live_server, team["alex"], change)
    reviewer = decide(
        as_person,
        live_server,
        team["bo"],
        change,
        decision="Request changes",
        comment="Say how the queue drains.",
    )
    expect(reviewer.locator(".badge.big")).to_have_text("Changes requested")

    page = as_person(team["dana"])
    page.goto(f"{live_server.url}/changes/{change.pk}/")
    answer_first = "Edit the change to answer the request for changes before submitting it again."
    expect(page.get_by_text(answer_first)).to_be_visible()
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("status")).to_contain_text("every standing approval")
    page.get_by_label("Rollback plan").fill(
        "Switch traffic back to blue; the old queue drains within 10 minutes."
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("2 earlier decision(s) were dismissed")
    expect(page.locator(".decisions li.dismissed")).to_have_count(2)
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator(".badge.big")).to_have_text("Submitted")
    screenshot(page, "change-resubmitted.png")
