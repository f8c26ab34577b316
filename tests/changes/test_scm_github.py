"""The GitHub backend through PyGithub, against a local server answering with GitHub's JSON shapes
over a real git repository (tests/github_server.py): the pull request read into the gates, the
release cut exactly once (merge, annotated tag, GitHub release with its notes), the revert, and
every refusal in words with nothing half-released."""

import time
from datetime import UTC, datetime

import pytest
from celery.exceptions import Retry

from changes import releases, tasks
from changes.models import PullRequest, Release
from changes.scm import GitHub
from changes.selectors import change_detail, change_quorum, deploy_gates
from portal.models import AuditEvent
from tests.factories import ApprovalPolicyFactory, EnvironmentFactory, change_create

pytestmark = pytest.mark.django_db


def github(server, token: str = "good-token") -> GitHub:
    return GitHub("acme/shop", token=token, api_url=server.url, pause_between_writes=None, timeout=5)


@pytest.fixture
def signed(github_server):
    """GitHub shows every commit on staging as verified, and main requires the `ci/test` check,
    which passed on staging's head."""
    github_server.verified |= set(github_server.rev_list("main..staging"))
    github_server.protect("main", ["ci/test"])
    github_server.add_check_run(github_server.branch_sha("staging"), "ci/test")
    return github_server


@pytest.fixture
def deploying(developer):
    """A change whose deployment has started, under a policy that asks for signed commits."""
    policy = ApprovalPolicyFactory(name="Signed", signed_commits_required=True)
    change = change_create(
        developer,
        environment=EnvironmentFactory(approval_policy=policy),
        title="Faster render queue",
        version_bump="minor",
    )
    change.status = "deploying"  # the deployment engine's part
    change.save(update_fields=["status"])
    return change


def untouched(server, main_before: str) -> bool:
    """Nothing half-released: main where it was, no new tag, no release."""
    return (
        server.branch_sha("main") == main_before
        and server.git("tag", "--list").split() == ["v1.2.0"]
        and server.releases == []
    )


def writes(server, method: str, ending: str) -> int:
    return sum(1 for m, path in server.requests if m == method and path.split("?")[0].endswith(ending))


def test_the_pull_request_is_found_or_opened_and_read_with_checks_reviews_and_owners(github_server):
    server = github_server
    server.push_commit("main", {"CODEOWNERS": "*  @acme/web\n/render.txt  @Dana-Dev\n"}, "Owners")
    server.teams = {"acme/web": ["Alex-Owner", "bo-qa"]}
    server.protect("main", ["ci/test", "ci/lint"])
    head = server.branch_sha("staging")
    server.add_check_run(head, "ci/test")
    server.add_status(head, "security/scan", "pending")
    signed_head = server.push_commit("staging", {"crop.txt": "safer area\n"}, "Tune the crop", signed=True)

    report = github(server).pull_request("staging", "main", title="CHG-000001: Faster render queue")
    assert report.number == 1 and report.url == "https://github.example/acme/shop/pull/1"
    assert report.head == signed_head and report.mergeable is True
    assert sorted(report.changed_files) == ["crop.txt", "render.txt"]
    assert set(report.owners) == {"@acme/web", "@Dana-Dev"}
    assert set(report.owner_logins) == {"dana-dev", "alex-owner", "bo-qa"}  # the team by its members
    assert report.required_checks == ["ci/test", "ci/lint"]
    assert report.checks == []  # the checks ran on the old head, not on the new commit
    assert set(report.unsigned) == set(server.rev_list("main..staging")) - {signed_head}

    server.add_check_run(signed_head, "ci/test", conclusion="failure")
    server.add_status(signed_head, "security/scan", "pending")
    server.add_review(1, "Alex-Owner", "APPROVED")
    again = github(server).pull_request("staging", "main", title="CHG-000002: Another change")
    assert again.number == 1 and writes(server, "POST", "/pulls") == 1  # found, not opened twice
    assert {(c.name, c.status, c.conclusion) for c in again.checks} == {
        ("ci/test", "completed", "failure"),
        ("security/scan", "in_progress", ""),
    }
    assert [(r.login, r.state, r.commit) for r in again.reviews] == [("alex-owner", "APPROVED", signed_head)]


def test_reading_feeds_the_checks_review_and_signature_gates(github_server, developer):
    server = github_server
    server.push_commit("main", {"CODEOWNERS": "*  @alex-owner\n"}, "Owners")
    server.protect("main", ["ci/test", "ci/lint"])
    head = server.branch_sha("staging")
    server.add_check_run(head, "ci/test")
    policy = ApprovalPolicyFactory(name="Signed", signed_commits_required=True)
    change = change_create(developer, environment=EnvironmentFactory(approval_policy=policy))
    change.status = "submitted"
    change.save(update_fields=["status"])

    def gates():
        detail = change_detail(developer, change.pk)
        return {g["name"]: (g["state"], g["detail"]) for g in deploy_gates(detail, change_quorum(detail))}

    releases.pull_request_read(change=change, scm=github(server))
    change.refresh_from_db()
    assert change.pull_request == "https://github.example/acme/shop/pull/1"  # opened and linked
    assert gates()["Automated checks"] == ("blocked", "required, not reported: ci/lint")
    assert gates()["Code review"] == ("blocked", "#1 waits for a code owner's approval (@alex-owner)")
    assert gates()["Signed commits"][0] == "blocked"

    server.add_check_run(head, "ci/lint")
    server.add_review(1, "bo-qa", "APPROVED")  # not a code owner
    server.verified |= set(server.rev_list("main..staging"))
    releases.pull_request_read(change=change, scm=github(server))
    assert gates()["Automated checks"] == ("ok", "2 check(s) passed")
    assert gates()["Code review"][0] == "blocked"
    assert gates()["Signed commits"] == ("ok", "every commit on staging is signed")

    server.add_review(1, "alex-owner", "APPROVED")
    releases.pull_request_read(change=change, scm=github(server))
    assert gates()["Code review"] == ("ok", "#1 approved by code owner @alex-owner")
    server.add_review(1, "bo-qa", "CHANGES_REQUESTED")
    releases.pull_request_read(change=change, scm=github(server))
    assert gates()["Code review"] == ("blocked", "changes requested by @bo-qa on #1")
    reads = AuditEvent.objects.filter(object_id=str(change.pk), action="change.pull_request_read")
    assert reads.count() == 4 and reads.order_by("pk").last().after["reviews"] == {
        "bo-qa": "CHANGES_REQUESTED",
        "alex-owner": "APPROVED",
    }


def test_one_call_merges_tags_and_publishes_the_release_on_github(signed, deploying):
    server = signed
    main_before, staging_head = server.branch_sha("main"), server.branch_sha("staging")
    release = releases.release_cut(change=deploying, scm=github(server))

    merge = server.branch_sha("main")
    assert release.version == "v1.3.0" and release.done and release.merge_commit == merge
    assert server.git("rev-list", "--parents", "-n", "1", merge).split()[1:] == [main_before, staging_head]
    assert server.git("cat-file", "-t", "v1.3.0") == "tag"  # annotated
    assert server.git("rev-parse", "v1.3.0^{commit}") == merge
    assert "Faster render queue" in server.git("tag", "-l", "--format=%(contents)", "v1.3.0")
    assert [r["tag_name"] for r in server.releases] == ["v1.3.0"]
    assert release.url == "https://github.example/acme/shop/releases/tag/v1.3.0"
    assert "## What's Changed" in release.notes and "/pull/1" in release.notes  # the pull requests
    assert "- Move rendering to the new queue (" in release.notes  # and the commits
    assert "- Crop thumbnails to the safe area (" in release.notes
    notes_item = deploying.checklist.get(key="release_notes")
    assert notes_item.done and notes_item.evidence == f"v1.3.0: {release.url}"

    requests_before = len(server.requests)
    again = releases.release_cut(change=deploying, scm=github(server))
    assert again.pk == release.pk and len(server.requests) == requests_before  # done: nothing asked


def test_a_release_cut_off_between_merge_and_tag_is_finished_by_the_retry(signed, deploying):
    server = signed
    server.drop_once = [("POST", "/git/tags")]  # the connection dies as the tag is created
    with pytest.raises(releases.RepositoryRefused, match="could not be reached") as refused:
        releases.release_cut(change=deploying, scm=github(server))
    assert refused.value.transient and refused.value.kind == "network"
    release = Release.objects.get(change=deploying)
    assert release.merged_at is not None and release.tagged_at is None
    assert "could not be reached" in release.error

    release = releases.release_cut(change=deploying, scm=github(server))
    assert release.done and release.error == ""
    assert writes(server, "PUT", "/merge") == 1 and writes(server, "POST", "/git/refs") == 1
    assert server.git("rev-parse", "v1.3.0^{commit}") == release.merge_commit == server.branch_sha("main")


def test_a_merge_made_before_the_record_was_lost_is_found_on_github(signed, deploying):
    server = signed
    staging_head = server.branch_sha("staging")
    number = server.open_pull("staging", "main", "Release by hand")
    merged = github(server).merge("staging", "main", "Release v1.3.0", head=staging_head)
    assert server.pulls[number]["merged_at"] and server.branch_sha("main") == merged
    release = releases.release_cut(change=deploying, scm=github(server))
    assert release.merge_commit == merged and writes(server, "PUT", "/merge") == 1


@pytest.mark.parametrize(
    ("arrange", "kind", "words"),
    [
        (
            lambda s: s.push_commit("main", {"render.txt": "patched on main\n"}, "Hotfix"),
            "conflict",
            r"Pull request #1 \(staging into main\) has conflicts\. Merge main into staging",
        ),
        (
            lambda s: s.add_check_run(s.branch_sha("staging"), "ci/test", conclusion="failure"),
            "checks",
            r"do not all pass \(failing: ci/test\): pull request #1 is not merged",
        ),
        (
            lambda s: s.protect("main", ["ci/test", "ci/e2e"]),
            "checks",
            r"do not all pass \(required but missing: ci/e2e\)",
        ),
        (
            lambda s: s.verified.clear(),
            "unsigned",
            r"2 commit\(s\) on staging are not signed \([0-9a-f]{10}, [0-9a-f]{10}\)",
        ),
        (
            lambda s: s.tokens.update({"good-token": {"contents:read", "pull_requests:read", "checks:read"}}),
            "token",
            r"The GitHub token may not merge the pull request in acme/shop \(Resource not accessible by "
            r"personal access token\): give it the pull_requests=write permission",
        ),
        (
            lambda s: s.tokens.clear(),
            "token",
            r"GitHub refused the token \(401 Bad credentials\): it is wrong, expired or revoked",
        ),
        (
            lambda s: setattr(s, "drop_connections", 1000),
            "network",
            r"GitHub could not be reached at http://127\.0\.0\.1:\d+ to find the last release",
        ),
    ],
    ids=[
        "conflict",
        "failing-check",
        "missing-check",
        "unsigned",
        "under-scoped-token",
        "bad-token",
        "network",
    ],
)
def test_each_refusal_is_said_in_words_and_nothing_is_half_released(signed, deploying, arrange, kind, words):
    server = signed
    arrange(server)
    main_before = server.branch_sha("main")
    with pytest.raises(releases.RepositoryRefused, match=words) as refused:
        releases.release_cut(change=deploying, scm=github(server))
    assert refused.value.kind == kind
    server.drop_connections = 0
    assert untouched(server, main_before)
    release = Release.objects.filter(change=deploying).first()
    assert release is None or (release.merged_at is None and release.error)


def test_a_rate_limit_reschedules_the_task_for_githubs_reset_time(signed, deploying, settings):
    server = signed
    settings.GITHUB_REPOSITORY, settings.GITHUB_TOKEN, settings.GITHUB_API_URL = (
        "acme/shop",
        "good-token",
        server.url,
    )
    reset = int(time.time()) + 90
    server.rate_limited_until = reset
    main_before = server.branch_sha("main")

    tasks.release_cut.push_request(
        id="release-task", retries=0, is_eager=True, called_directly=False
    )  # as the worker runs it, without a broker
    try:
        with pytest.raises(Retry) as retry:
            tasks.release_cut.run(deploying.pk)
    finally:
        tasks.release_cut.pop_request()
    assert retry.value.when == datetime.fromtimestamp(reset, tz=UTC)  # no sleeping in the worker
    assert "GitHub's rate limit for this token is used up until" in str(retry.value.exc)
    assert untouched(server, main_before)

    server.rate_limited_until = None  # the reset time came
    assert tasks.release_cut.run(deploying.pk) == "v1.3.0"


def test_a_release_is_reverted_by_a_pull_request_on_github(signed, deploying, release_manager):
    server = signed
    tree_before = server.git("rev-parse", "main^{tree}")
    release = releases.release_cut(change=deploying, scm=github(server))
    reverted = releases.release_revert(actor=release_manager, change=deploying, scm=github(server))
    assert server.branch_sha("revert-v1.3.0") == reverted.commit
    assert server.git("rev-parse", "revert-v1.3.0^{tree}") == tree_before  # the release undone
    assert server.git("rev-parse", "revert-v1.3.0^") == release.merge_commit
    pull = next(p for p in server.pulls.values() if p["head"] == "revert-v1.3.0")
    assert pull["base"] == "main" and pull["title"] == "Revert v1.3.0"
    assert reverted.url == f"https://github.example/acme/shop/pull/{pull['number']}"
    event = AuditEvent.objects.get(object_id=str(deploying.pk), action="release.revert")
    assert event.after == {"version": "v1.3.0", "commit": reverted.commit, "url": reverted.url}

    again = releases.release_revert(actor=release_manager, change=deploying, scm=github(server))
    assert again == reverted  # the open revert is found, not made twice


def test_a_revert_that_later_changes_overlap_is_refused(signed, deploying, release_manager):
    server = signed
    releases.release_cut(change=deploying, scm=github(server))
    server.push_commit("main", {"render.txt": "newer queue\n"}, "Tune the queue again")
    with pytest.raises(
        releases.RepositoryRefused,
        match="v1.3.0 does not revert cleanly on main: later changes touch render.txt",
    ):
        releases.release_revert(actor=release_manager, change=deploying, scm=github(server))
    assert "revert-v1.3.0" not in server.git("branch", "--list")
    assert not PullRequest.objects.filter(change=deploying).exists()
