"""A change's repository side in Chromium: the gates GitHub feeds (checks, code-owner review,
signed commits) and the release cut on GitHub, with its steps, link and notes."""

import pytest
from playwright.sync_api import expect

from changes import releases
from integrations.scm import GitHub
from tests.changes.conftest import github_server, repo  # noqa: F401 (fixtures)
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import (
    ApprovalPolicyFactory,
    EnvironmentFactory,
    UserFactory,
    change_create,
    deploying_at,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


def test_the_change_page_shows_what_github_says_and_the_release(live_server, page, github_server):  # noqa: F811
    server = github_server
    server.push_commit("main", {"CODEOWNERS": "*  @alex-owner\n"}, "Owners")
    server.protect("main", ["ci/test"])
    server.add_check_run(server.branch_sha("staging"), "ci/test", conclusion="failure")
    scm = GitHub("acme/shop", token="good-token", api_url=server.url, pause_between_writes=None)
    dana = UserFactory(username="dana", first_name="Dana")
    policy = ApprovalPolicyFactory(name="Signed", signed_commits_required=True)
    change = change_create(dana, environment=EnvironmentFactory(approval_policy=policy), title="Faster queue")
    change.status = "submitted"
    change.save(update_fields=["status"])
    releases.pull_request_read(change=change, scm=scm)

    sign_in(page, live_server, dana)
    page.goto(f"{live_server.url}/changes/{change.pk}/")
    gates = page.locator(".gates")
    expect(gates.locator("li.blocked", has_text="Automated checks")).to_contain_text("failing: ci/test")
    expect(gates.locator("li.blocked", has_text="Code review")).to_contain_text(
        "#1 waits for a code owner's approval (@alex-owner)"
    )
    expect(gates.locator("li.blocked", has_text="Signed commits")).to_contain_text("2 commit(s) on staging")
    expect(page.locator(".facts")).to_contain_text("@alex-owner (of 2 changed files")
    screenshot(page, "change-gates-from-github.png")

    server.add_check_run(server.branch_sha("staging"), "ci/test")
    server.add_review(1, "alex-owner", "APPROVED")
    server.verified |= set(server.rev_list("main..staging"))
    deploying_at(change, scm)  # read again, approved on its head, and the engine's part
    release = releases.release_cut(change=change, scm=scm)

    page.reload()
    for name in ("Automated checks", "Code review", "Signed commits"):
        expect(gates.locator("li.ok", has_text=name)).to_be_visible()
    card = page.locator("#release")
    expect(card.locator("h2")).to_have_text("Release v1.3.0")  # the factory bumps the minor version
    expect(card.locator(".steps li.ok")).to_have_count(3)
    expect(card.get_by_role("link", name="the release on GitHub")).to_have_attribute("href", release.url)
    card.get_by_text("Release notes").click()
    expect(card.locator("pre.notes")).to_contain_text("Move rendering to the new queue")
    screenshot(page, "change-released-on-github.png")
