"""What ships is what was approved, in Chromium: an approver approves a change on its head; the
requester pushes a new commit to its branch; the page shows the approval dismissed and why; the
approver approves the new head; a release manager deploys it (the engine advanced in this process,
its worker's part); and the change page's chain of custody shows every link matching."""

from datetime import timedelta

import pytest
from django.db import transaction
from playwright.sync_api import expect

from changes import releases
from changes import services as changes
from changes.models import ChangeRequest, StagingRun
from deployments.models import Deployment
from integrations import scm
from portal import clock
from tests.changes.conftest import commit, git, repo  # noqa: F401 (fixtures)
from tests.deployments.conftest import (  # noqa: F401 (fixtures)
    alb,
    cloudwatch_percentiles,
    colours,
    judged_by,
    production,
)
from tests.deployments.test_engine import run
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import ServiceFactory, UserFactory, change_create, otp_code, totp_device

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


def soaked(change: ChangeRequest, commit_id: str) -> None:
    """CI's reports of the commit in staging, two hours ago (the policy asks one hour)."""
    staging = change.environment.__class__.objects.get(name="staging")
    for result in ("deployed", "green"):
        StagingRun.objects.create(
            environment=staging,
            commit=commit_id,
            version=commit_id[:7],
            result=result,
            at=clock.now() - timedelta(hours=2),
        )


def approve(page, live_server, person, change) -> None:
    page.goto(f"{live_server.url}/changes/{change.pk}/")
    decide = page.locator("#decide")
    decide.get_by_label("Code").fill(otp_code(totp_device(person)))
    decide.get_by_role("button", name="Record decision").click()
    expect(page.locator(".messages")).to_contain_text("Your decision is recorded.")


def test_new_commits_dismiss_the_approval_and_the_chain_shows_what_shipped(
    live_server,
    browser,
    page,
    production,  # noqa: F811
    repo,  # noqa: F811
    alb,  # noqa: F811
):
    dana = UserFactory(username="dana", first_name="Dana", role="developer")
    quinn = UserFactory(username="quinn", first_name="Quinn", role="qa")
    rita = UserFactory(username="rita", first_name="Rita", role="release_manager")
    change = change_create(
        dana, environment=production, services=[ServiceFactory()], title="Faster render queue"
    )
    with transaction.atomic():
        changes.change_submit(actor=dana, change=change)
    releases.pull_request_read(change=change, scm=scm.repository())  # the worker's read
    first = git(repo, "rev-parse", "staging")

    sign_in(page, live_server, quinn)
    approve(page, live_server, quinn, change)
    expect(page.locator(".page-head .badge")).to_contain_text("Approved")
    expect(page.locator("ul.decisions")).to_contain_text(f"on {first[:10]}")

    # The requester pushes one more commit; GitHub's event (or beat) has the branch read again.
    git(repo, "checkout", "--quiet", "staging")
    commit(repo, "late.txt", "one more thing\n", "One more thing")
    git(repo, "checkout", "--quiet", "main")
    pushed = git(repo, "rev-parse", "staging")
    releases.pull_request_read(change=ChangeRequest.objects.get(pk=change.pk), scm=scm.repository())

    page.reload()
    expect(page.locator(".page-head .badge")).to_contain_text("Submitted")
    stale = page.locator("#stale-approval")
    expect(stale).to_contain_text("New commits since your approval.")
    expect(stale).to_contain_text(f"staging moved from {first[:10]} to {pushed[:10]}")
    expect(page.locator("ul.decisions li.dismissed")).to_contain_text(
        "dismissed: New commits since the approval"
    )
    screenshot(page, "approval-dismissed-by-new-commits.png")

    approve(page, live_server, quinn, change)
    expect(page.locator(".page-head .badge")).to_contain_text("Approved")
    expect(page.locator("#stale-approval")).to_have_count(0)

    change.refresh_from_db()
    assert change.approved_commit == pushed
    soaked(change, pushed)
    start = clock.now() + timedelta(minutes=1)
    with transaction.atomic():
        changes.change_schedule(actor=dana, change=change, start=start, end=start + timedelta(hours=2))
    clock.shift(timedelta(minutes=2))

    deployer = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    deployer.errors = []
    deployer.on("pageerror", lambda error: deployer.errors.append(str(error)))
    sign_in(deployer, live_server, rita)
    deployer.goto(f"{live_server.url}/changes/{change.pk}/")
    deploy = deployer.locator("#deploy")
    deploy.get_by_label("Code").fill(otp_code(totp_device(rita)))
    deploy.get_by_role("button", name="Deploy to Production").click()
    expect(deployer.locator(".messages")).to_contain_text(f"{change.number} is deploying to Production.")
    deployment = run(Deployment.objects.get(change=change), alb=alb)  # the worker's part
    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error

    # The deployment page reloads itself once the deployment ends: the change opens in a tab of
    # its own, so that reload cannot abort its navigation.
    reader = deployer.context.new_page()
    reader.on("pageerror", lambda error: deployer.errors.append(str(error)))
    reader.goto(f"{live_server.url}/changes/{change.pk}/")
    custody = reader.locator("#custody")
    expect(custody).to_contain_text("Chain of custody")
    for name in ("Approved commit", "Staging soak", "Merge", "Tag", f"Deployment {deployment.pk}"):
        link = custody.locator("li.ok", has=reader.get_by_text(name, exact=True))
        expect(link).to_contain_text("matches")
    approved = custody.locator("li", has=reader.get_by_text("Approved commit", exact=True))
    expect(approved).to_contain_text(pushed[:12])
    expect(approved).to_contain_text("quinn · authenticator app")
    expect(custody.locator("li.blocked")).to_have_count(0)
    screenshot(reader, "chain-of-custody.png")
    assert not page.errors and not deployer.errors
    deployer.context.close()
