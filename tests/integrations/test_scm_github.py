"""The GitHub backend through PyGithub, against a local server answering with GitHub's JSON shapes
over a real git repository (tests/github_server.py): the pull request read into the gates, the
release cut exactly once (merge, annotated tag, GitHub release with its notes), the revert, and
every refusal in words with nothing half-released."""

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from celery.exceptions import Retry

from changes import releases, tasks
from changes.models import Release
from changes.selectors import change_detail, change_quorum, deploy_gates
from integrations.scm import GitHub, ScmError
from portal.models import AuditEvent
from tests.factories import ApprovalPolicyFactory, EnvironmentFactory, change_create, deploying_at
from tests.github_server import DEFAULT_PERMISSIONS

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
def deploying(developer, github_server):
    """A change approved on the head of staging whose deployment has started, under a policy
    that asks for signed commits."""
    policy = ApprovalPolicyFactory(name="Signed", signed_commits_required=True)
    change = change_create(
        developer,
        environment=EnvironmentFactory(approval_policy=policy),
        title="Faster render queue",
        version_bump="minor",
    )
    return deploying_at(change, github(github_server))


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
            r"do not all pass \(required, not reported: ci/e2e\)",
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

    tasks.pull_request_read.push_request(
        id="read-task", retries=0, is_eager=True, called_directly=False
    )  # as the worker runs it, without a broker
    try:
        with pytest.raises(Retry) as retry:
            tasks.pull_request_read.run(deploying.pk)
    finally:
        tasks.pull_request_read.pop_request()
    assert retry.value.when == datetime.fromtimestamp(reset, tz=UTC)  # no sleeping in the worker
    assert "GitHub's rate limit for this token is used up until" in str(retry.value.exc)
    assert untouched(server, main_before)

    server.rate_limited_until = None  # the reset time came
    assert tasks.pull_request_read.run(deploying.pk) == "read"


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
    assert not any(pull["head"] == "revert-v1.3.0" for pull in server.pulls.values())


def gates_of(change, viewer) -> dict:
    detail = change_detail(viewer, change.pk)
    return {g["name"]: (g["state"], g["detail"]) for g in deploy_gates(detail, change_quorum(detail))}


def submitted(change):
    change.status = "submitted"
    change.save(update_fields=["status"])
    return change


def test_a_branch_that_moved_after_it_was_approved_is_not_released(signed, deploying):
    server = signed
    releases.pull_request_read(change=deploying, scm=github(server))
    approved, main_before = server.branch_sha("staging"), server.branch_sha("main")
    late = server.push_commit("staging", {"late.txt": "unapproved\n"}, "A late commit", signed=True)
    server.add_check_run(late, "ci/test")  # passing: still not what was approved
    for _ in range(2):  # reading the new head again approves nothing
        with pytest.raises(
            releases.RepositoryRefused,
            match=rf"staging moved to {late[:10]} after {approved[:10]} was approved: the new commits were "
            "never approved, so nothing is merged",
        ) as refused:
            releases.release_cut(change=deploying, scm=github(server))
        assert refused.value.kind == "conflict" and untouched(server, main_before)
        assert Release.objects.get(change=deploying).head_commit == ""
        releases.pull_request_read(change=deploying, scm=github(server))


def test_a_release_whose_merge_and_tag_answers_were_lost_ends_with_one_merge_and_one_tag(signed, deploying):
    server = signed
    head, main_before = server.branch_sha("staging"), server.branch_sha("main")
    server.drop_reply_once = [("PUT", "/merge"), ("POST", "/git/refs")]  # GitHub acts, the answer is lost
    with pytest.raises(releases.RepositoryRefused, match="could not be reached") as refused:
        releases.release_cut(change=deploying, scm=github(server))
    assert refused.value.kind == "network"
    release = Release.objects.get(change=deploying)
    assert release.head_commit == head and release.merged_at is None  # kept before the merge was asked
    merged = server.branch_sha("main")
    assert server.git("rev-parse", f"{merged}^1", f"{merged}^2").split() == [main_before, head]
    server.push_commit("staging", {"late.txt": "unchecked\n"}, "A late commit", signed=True)

    with pytest.raises(releases.RepositoryRefused, match="could not be reached"):
        releases.release_cut(change=deploying, scm=github(server))  # the merge found; the tag's ref lost
    release.refresh_from_db()
    assert release.merge_commit == merged and release.tagged_at is None

    release = releases.release_cut(change=deploying, scm=github(server))
    assert release.done and release.merge_commit == merged == server.branch_sha("main")
    assert server.git("rev-parse", "v1.3.0^{commit}") == merged
    assert writes(server, "PUT", "/merge") == 1 and writes(server, "POST", "/pulls") == 1
    assert writes(server, "POST", "/git/tags") == 1 and writes(server, "POST", "/git/refs") == 1


def test_a_merge_into_a_branch_other_than_the_default_is_found_by_its_pull_request(signed):
    server = signed
    server.git("update-ref", "refs/heads/production", server.branch_sha("main"))
    head = server.branch_sha("staging")
    number = server.open_pull("staging", "production", "Release by hand")
    merged = github(server).merge("staging", "production", "Release v1.3.0", head=head)
    assert server.pulls[number]["merged_at"] and server.branch_sha("production") == merged
    # As GitHub documents: for a commit not on the default branch, only open pull requests.
    listed = requests.get(
        f"{server.api}/commits/{head}/pulls", headers={"Authorization": "token good-token"}, timeout=5
    )
    assert listed.json() == []
    assert github(server).merge_that_brought(head, "staging", "production") == merged
    assert github(server).merge_that_brought(head, "staging", "production", number=number) == merged
    assert github(server).merge_that_brought(head, "staging", "main") is None


def pin_submodule(server, branch: str, path: str) -> str:
    """A commit on branch that adds a submodule (a gitlink) at path."""
    parent, entries = server.branch_sha(branch), server.tree_entries(branch)
    server.place(entries, path, ("160000", "commit", server.branch_sha("main")))
    who = {"name": "Dana Dev", "email": "dana@example.com"}
    sha = server.commit_tree(server.write_tree(entries), [parent], "Vendor the library", who, who)
    server.git("update-ref", f"refs/heads/{branch}", sha, parent)
    server.verified.add(sha)
    return sha


@pytest.mark.parametrize(
    ("arrange", "words"),
    [
        (
            lambda s: s.push_commit("staging", {f"assets/{n}.txt": f"{n}\n" for n in range(300)}, "Assets"),
            r"v1\.3\.0 is too large to revert through the API \(it changes 300 files or more\): "
            "revert it by hand",
        ),
        (
            lambda s: setattr(s, "tree_limit", 2),  # the release's tree has three files
            r"v1\.3\.0 is too large to revert through the API \(GitHub lists its tree only in part\)",
        ),
        (
            lambda s: pin_submodule(s, "staging", "vendor/lib"),
            r"v1\.3\.0 changes vendor/lib, which is not a plain file \(a submodule\): revert it by hand",
        ),
    ],
    ids=["300-files", "truncated-tree", "submodule"],
)
def test_a_release_the_api_cannot_revert_whole_is_refused(signed, deploying, release_manager, arrange, words):
    server = signed
    arrange(server)
    deploying_at(deploying, github(server))  # approved as arranged
    server.verified |= set(server.rev_list("main..staging"))
    server.add_check_run(server.branch_sha("staging"), "ci/test")
    releases.release_cut(change=deploying, scm=github(server))
    with pytest.raises(releases.RepositoryRefused, match=words) as refused:
        releases.release_revert(actor=release_manager, change=deploying, scm=github(server))
    assert refused.value.kind == "conflict"
    assert "revert-v1.3.0" not in server.git("branch", "--list")
    assert not any(pull["head"] == "revert-v1.3.0" for pull in server.pulls.values())


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [
        (429, {}, 60),  # no word on when: a minute
        (403, {"Retry-After": "30"}, 30),  # a secondary limit: Retry-After, not the hourly reset
        (429, {"Retry-After": "30", "X-RateLimit-Remaining": "0"}, 30),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": 120}, 120),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": -100}, 1),  # a reset gone by: a second
    ],
    ids=["429", "secondary-403", "secondary-429", "primary", "reset-past"],
)
def test_a_rate_limit_is_waited_out_for_as_long_as_github_says(github_server, status, headers, wait):
    server = github_server
    now = time.time()
    if "X-RateLimit-Reset" in headers:
        headers = {**headers, "X-RateLimit-Reset": str(int(now) + headers["X-RateLimit-Reset"])}
    server.answer_once = [("GET", "/tags", status, headers)]  # the fake adds Remaining 49xx, Reset in an hour
    with pytest.raises(ScmError, match="GitHub's rate limit for this token is used up until") as refused:
        github(server).tags()
    assert refused.value.kind == "rate_limit" and refused.value.transient
    expected = datetime.fromtimestamp(now, tz=UTC) + timedelta(seconds=wait)
    assert abs((refused.value.retry_at - expected).total_seconds()) < 3


def test_teams_that_cannot_be_read_are_named_and_other_refusals_stop_the_read(github_server, developer):
    server = github_server
    server.push_commit("main", {"CODEOWNERS": "*  @acme/web @acme/secret @dana-dev\n"}, "Owners")
    server.teams = {"acme/web": ["Alex-Owner"]}  # acme/secret is not there (404)
    change = submitted(change_create(developer))
    pull = releases.pull_request_read(change=change, scm=github(server))
    assert pull.owner_logins == ["dana-dev", "alex-owner"] and pull.unresolved_teams == ["@acme/secret"]
    assert gates_of(change, developer)["Code review"] == (
        "blocked",
        "#1 waits for a code owner's approval (@acme/web, @acme/secret, @dana-dev) "
        "(the members of @acme/secret could not be read)",
    )

    server.teams["acme/web"].append("bo-qa")  # a new member: who may approve changed, and is audited
    pull = releases.pull_request_read(change=change, scm=github(server))
    reads = AuditEvent.objects.filter(object_id=str(change.pk), action="change.pull_request_read")
    assert reads.count() == 2 and reads.order_by("pk").last().after["owner_logins"] == [
        "dana-dev",
        "alex-owner",
        "bo-qa",
    ]

    server.tokens["good-token"] = DEFAULT_PERMISSIONS - {"members:read"}  # 403 on every team
    pull = releases.pull_request_read(change=change, scm=github(server))
    assert pull.owner_logins == ["dana-dev"] and pull.unresolved_teams == ["@acme/web", "@acme/secret"]

    server.tokens["good-token"] = set(DEFAULT_PERMISSIONS)
    for status, kind in ((502, "network"), (401, "token")):
        server.answer_once = [("GET", "/teams/web/members", status, {})]
        with pytest.raises(releases.RepositoryRefused) as refused:
            releases.pull_request_read(change=change, scm=github(server))
        assert refused.value.kind == kind
    server.answer_once = [("GET", "/teams/web/members", 403, {"X-RateLimit-Remaining": "0"})]
    with pytest.raises(releases.RepositoryRefused) as refused:
        releases.pull_request_read(change=change, scm=github(server))
    assert refused.value.kind == "rate_limit"


def test_the_notes_list_the_newest_hundred_commits_and_count_the_rest(github_server):
    server = github_server
    for n in range(105):
        server.push_commit("staging", {f"steps/{n}.txt": f"{n}\n"}, f"Step {n}")
    head = server.branch_sha("staging")
    server.requests.clear()
    notes = github(server).release_notes(None, head)  # a first release: all history is behind it
    commits = notes.split("## Commits\n", 1)[1].splitlines()
    assert (
        len(commits) == 101 and commits[0].startswith("- Step 104 (") and commits[99].startswith("- Step 5 (")
    )
    assert commits[100] == "- … and 8 more commits"  # Step 4 to 0, the two on staging, the first release
    assert sum(1 for _, path in server.requests if urlsplit(path).path.endswith("/commits")) <= 2

    commits = github(server).release_notes("v1.2.0", head).split("## Commits\n", 1)[1].splitlines()
    assert (
        len(commits) == 101 and commits[0].startswith("- Step 104 (") and commits[99].startswith("- Step 5 (")
    )
    assert commits[100] == "- … and 7 more commits"


def test_notes_longer_than_githubs_limit_for_a_release_are_cut(github_server):
    server = github_server
    server.open_pull("staging", "main", "A" * 130_000)  # GitHub's notes list the pull request by its title
    merged = github(server).merge("staging", "main", "Release v1.3.0")
    notes = github(server).release_notes("v1.2.0", merged, version="v1.3.0")
    assert len(notes) < 125_000
    assert notes.endswith("(cut here: the notes were longer than GitHub's 125,000 characters)")


def test_a_pull_request_named_on_the_change_must_be_the_one_of_its_branches(github_server, developer):
    server = github_server
    server.push_commit("feature", {"feature.txt": "new\n"}, "A feature", start="main")
    number = server.open_pull("feature", "main", "Another change")
    change = change_create(developer, pull_request=f"#{number}")
    with pytest.raises(
        releases.RepositoryRefused,
        match=rf"Pull request #{number} merges feature into main, not staging into main: name the right one",
    ) as refused:
        releases.pull_request_read(change=change, scm=github(server))
    assert refused.value.kind == "missing"


def test_the_release_merges_the_pull_request_that_was_read(signed, deploying):
    server = signed
    releases.pull_request_read(change=deploying, scm=github(server))  # opens #1, and reads it
    server.pulls[1]["state"] = "closed"  # closed on GitHub, and another one opened
    other = server.open_pull("staging", "main", "Someone else's release")
    main_before = server.branch_sha("main")
    with pytest.raises(
        releases.RepositoryRefused,
        match=r"Pull request #1 \(staging into main\) is closed without being merged",
    ) as refused:
        releases.release_cut(change=deploying, scm=github(server))
    assert refused.value.kind == "missing" and untouched(server, main_before)
    assert server.pulls[other]["state"] == "open"


@pytest.mark.parametrize("all_must_pass", [True, False])
def test_a_failing_check_the_branch_does_not_require_stops_the_merge_only_when_the_policy_says_so(
    signed, deploying, all_must_pass
):
    server = signed
    server.add_check_run(server.branch_sha("staging"), "ci/flaky", conclusion="failure")
    policy = deploying.environment.approval_policy
    policy.checks_must_pass = all_must_pass
    policy.save()
    main_before = server.branch_sha("main")
    if all_must_pass:
        with pytest.raises(releases.RepositoryRefused, match=r"do not all pass \(failing: ci/flaky\)"):
            releases.release_cut(change=deploying, scm=github(server))
        assert untouched(server, main_before)
    else:
        assert releases.release_cut(change=deploying, scm=github(server)).done


def test_a_review_by_a_deleted_account_is_read_as_ghosts(github_server):
    server = github_server
    github(server).pull_request("staging", "main", title="CHG-000001: Faster render queue")  # opens #1
    server.add_review(1, None, "APPROVED")
    report = github(server).pull_request("staging", "main")
    assert [(r.login, r.state) for r in report.reviews] == [("ghost", "APPROVED")]


def test_the_code_review_gate_stays_until_github_is_read(github_server, developer, settings):
    server = github_server
    settings.GITHUB_REPOSITORY = "acme/shop"
    change = submitted(change_create(developer))
    assert gates_of(change, developer)["Code review"] == ("blocked", "not read from GitHub yet")

    server.tokens.clear()
    with pytest.raises(releases.RepositoryRefused):
        releases.pull_request_read(change=change, scm=github(server))
    state, detail = gates_of(change, developer)["Code review"]
    assert state == "blocked" and detail.startswith("could not be read: GitHub refused the token (401")

    server.tokens["good-token"] = set(DEFAULT_PERMISSIONS)
    releases.pull_request_read(change=change, scm=github(server))
    assert gates_of(change, developer)["Code review"] == (
        "ok",
        "#1: CODEOWNERS names no owner of the 2 changed file(s)",
    )
