"""What the repository says about a change, read into its gates: the code owners of the changed
files (CODEOWNERS), whether the branches merge, which commits are not signed; with a repository
on disk (GitHub's own answers are in test_scm_github.py)."""

from datetime import timedelta

import pytest

from changes import releases, services, tasks
from changes.models import ChangeRequest, CheckRun, PullRequest
from changes.selectors import change_detail, change_quorum, code_owner_logins, deploy_gates
from integrations.scm import GitHub, LocalGit, ScmError, code_owners, repository
from portal import clock
from portal.models import AuditEvent
from tests.changes.conftest import commit, git
from tests.factories import ApprovalPolicyFactory, EnvironmentFactory, UserFactory, change_create

CODEOWNERS = """\
# Everything, unless a later rule says otherwise
*               @acme/web
/render.txt     @dana-dev @Alex-Owner
docs/           @writer
*.lock
"""


def test_the_last_matching_codeowners_rule_names_the_owners():
    assert code_owners(CODEOWNERS, ["app.txt"]) == ["@acme/web"]
    assert code_owners(CODEOWNERS, ["render.txt", "crop.txt"]) == ["@dana-dev", "@Alex-Owner", "@acme/web"]
    assert code_owners(CODEOWNERS, ["sub/render.txt"]) == ["@acme/web"]  # anchored to the root
    assert code_owners(CODEOWNERS, ["docs/guide/intro.md", "deep/docs/x.md"]) == ["@writer"]
    assert code_owners(CODEOWNERS, ["poetry.lock"]) == []  # a rule with no owner leaves it unowned
    assert code_owners("", ["app.txt"]) == []

    # Where GitHub departs from gitignore's rules, as it documents them.
    github_rules = (
        "*  @all  # everyone, unless a later rule says otherwise\n"
        "docs/*  @docs\n"
        "api/**/*  @api\n"
        "\\#file  @x\n"
        "!*.md  @negated\n"
        "*.[ch]  @c\n"
        "odd\\  @broken\n"
        "src/a#b.py  @hash\n"
        "my\\ file.txt  @spaced\n"
    )
    for path, owners in [
        ("docs/a.md", ["@docs"]),  # `docs/*`: the files in docs/ ...
        ("docs/build/t.md", ["@all"]),  # ... not those in its folders
        ("api/v1/x.py", ["@api"]),  # `**/*` stays recursive
        ("#file", ["@all"]),  # no `\#` escape in CODEOWNERS: the line takes nothing, and breaks nothing
        ("notes.md", ["@all"]),  # no `!` negation
        ("main.c", ["@all"]),  # no `[ ]` range
        ("odd\\", ["@all"]),  # a line pathspec cannot parse is skipped, as GitHub skips it
        ("src/a#b.py", ["@hash"]),  # a `#` inside a pattern starts no comment
        ("my file.txt", ["@spaced"]),  # an escaped space is part of the pattern
    ]:
        assert code_owners(github_rules, [path]) == owners, path


@pytest.fixture
def owned(repo):
    """The repository with a CODEOWNERS file on main, merged into staging before its two commits."""
    git(repo, "checkout", "--quiet", "main")
    commit(repo, "CODEOWNERS", CODEOWNERS, "Name the code owners")
    git(repo, "checkout", "--quiet", "staging")
    git(repo, "rebase", "--quiet", "main")
    git(repo, "checkout", "--quiet", "main")
    return repo


def test_a_repository_on_disk_names_owners_merges_and_unsigned_commits(owned):
    report = LocalGit(owned).pull_request("staging", "main")
    assert report.number is None and report.head == git(owned, "rev-parse", "staging")
    assert sorted(report.changed_files) == ["crop.txt", "render.txt"]
    assert report.owners == ["@acme/web", "@dana-dev", "@Alex-Owner"]
    assert report.owner_logins == ["dana-dev", "alex-owner"]  # the team needs GitHub to expand
    assert report.mergeable is True and len(report.unsigned) == 2
    commit(owned, "render.txt", "old queue, patched on main\n", "Hotfix on main")
    assert LocalGit(owned).pull_request("staging", "main").mergeable is False


@pytest.mark.django_db
def test_reading_the_repository_feeds_the_gates_and_the_code_owners(owned, developer):
    policy = ApprovalPolicyFactory(name="Signed", signed_commits_required=True)
    change = change_create(developer, environment=EnvironmentFactory(approval_policy=policy))
    gates = {g["name"]: g for g in deploy_gates(change_detail(developer, change.pk), change_quorum(change))}
    assert gates["Signed commits"] == {
        "name": "Signed commits",
        "state": "blocked",
        "detail": "the repository has not been read yet",
    }

    pull = releases.pull_request_read(change=change, scm=LocalGit(owned))
    change = ChangeRequest.objects.get(pk=change.pk)
    assert pull.owner_logins == ["dana-dev", "alex-owner"] and code_owner_logins(change) == {
        "dana-dev",
        "alex-owner",
    }
    detail = change_detail(developer, change.pk)
    gates = {g["name"]: g for g in deploy_gates(detail, change_quorum(detail))}
    unsigned = [sha[:10] for sha in git(owned, "rev-list", "main..staging").split()]
    assert gates["Signed commits"]["state"] == "blocked"
    assert gates["Signed commits"]["detail"] == f"2 commit(s) on staging not signed: {', '.join(unsigned)}"
    assert "Code review" not in gates  # no pull request on disk
    event = AuditEvent.objects.get(object_id=str(change.pk), action="change.pull_request_read")
    assert event.before is None and event.after["owners"] == ["@acme/web", "@dana-dev", "@Alex-Owner"]

    releases.pull_request_read(change=change, scm=LocalGit(owned))  # nothing new: nothing audited
    assert AuditEvent.objects.filter(object_id=str(change.pk), action="change.pull_request_read").count() == 1

    # An approver who owns the changed files by CODEOWNERS counts as a code owner.
    services.change_submit(actor=developer, change=change)
    alex = UserFactory(role="developer", github_login="alex-owner")
    services.change_decide(actor=alex, change=change, decision="approve")
    assert change.approvals.get(approver=alex).code_owner is True


@pytest.mark.django_db
def test_a_read_on_disk_keeps_the_checks_github_told_of_and_the_gate_counts_those_of_the_head(
    owned, developer
):
    change = change_create(developer)
    head = git(owned, "rev-parse", "staging")
    releases.pull_request_read(change=change, scm=LocalGit(owned))
    releases.check_run_record(
        change=change, name="ci/test", status="completed", conclusion="success", head_sha=head, url=""
    )

    def checks_gate():
        detail = change_detail(developer, change.pk)
        gates = {g["name"]: g for g in deploy_gates(detail, change_quorum(detail))}
        return gates["Automated checks"]["state"], gates["Automated checks"]["detail"]

    releases.pull_request_read(change=change, scm=LocalGit(owned))  # a repository on disk sees no checks
    assert CheckRun.objects.filter(change=change, name="ci/test", head_sha=head).exists()
    assert not AuditEvent.objects.filter(object_id=str(change.pk), action="change.checks_gone").exists()
    assert checks_gate() == ("ok", "1 check(s) passed")

    git(owned, "checkout", "--quiet", "staging")
    commit(owned, "crop.txt", "safer area\n", "Tune the crop")
    git(owned, "checkout", "--quiet", "main")
    releases.pull_request_read(
        change=change, scm=LocalGit(owned)
    )  # the head moved: its run was on the old one
    assert checks_gate() == ("blocked", "no check has reported on the pull request yet")


@pytest.mark.django_db
def test_the_catch_up_reads_only_the_pull_requests_not_read_lately(settings, owned, developer, monkeypatch):
    from config.celery import app

    settings.GITHUB_REPOSITORY, settings.GIT_REPOSITORY_PATH = None, str(owned)
    monkeypatch.setitem(app.conf, "task_always_eager", True)  # the worker's part, run here
    fresh, stale, unread = (change_create(developer) for _ in range(3))
    for change in (fresh, stale, unread):
        change.status = "submitted"
        change.save(update_fields=["status"])
    releases.pull_request_read(change=fresh, scm=LocalGit(owned))
    releases.pull_request_read(change=stale, scm=LocalGit(owned))
    long_ago = clock.now() - timedelta(minutes=11)
    PullRequest.objects.filter(change=stale).update(read_at=long_ago)
    fresh_read = PullRequest.objects.get(change=fresh).read_at

    assert tasks.pull_requests_read.run() == 2
    assert PullRequest.objects.get(change=fresh).read_at == fresh_read  # left alone
    assert PullRequest.objects.get(change=stale).read_at > long_ago
    assert PullRequest.objects.get(change=unread).read_at is not None


@pytest.mark.django_db
def test_a_repository_that_cannot_be_read_says_why_on_the_change(tmp_path, developer):
    change = change_create(developer)
    with pytest.raises(releases.RepositoryRefused, match="There is no branch or tag 'staging'") as refused:
        releases.pull_request_read(change=change, scm=LocalGit(tmp_path))
    assert refused.value.kind == "missing" and not refused.value.transient
    assert "There is no branch or tag 'staging'" in PullRequest.objects.get(change=change).error


def test_the_backend_follows_the_settings(settings, repo):
    settings.GITHUB_REPOSITORY, settings.GITHUB_TOKEN = "acme/shop", "a-token"
    assert isinstance(repository(), GitHub) and repository().full_name == "acme/shop"
    settings.GITHUB_TOKEN = None
    with pytest.raises(ScmError, match="GITHUB_TOKEN is not"):
        repository()
    settings.GITHUB_REPOSITORY, settings.GIT_REPOSITORY_PATH = None, str(repo)
    assert isinstance(repository(), LocalGit) and repository().path == repo
    settings.GIT_REPOSITORY_PATH = None
    with pytest.raises(ScmError, match="No repository is configured"):
        repository()


@pytest.mark.django_db
def test_the_task_reads_the_configured_repository_for_an_open_change(settings, owned, developer):
    settings.GITHUB_REPOSITORY, settings.GIT_REPOSITORY_PATH = None, str(owned)
    change = change_create(developer)
    assert tasks.pull_request_read.run(change.pk) == "read"
    assert PullRequest.objects.get(change=change).owners == ["@acme/web", "@dana-dev", "@Alex-Owner"]
    services.change_cancel(actor=developer, change=change, reason="Not needed")
    assert tasks.pull_request_read.run(change.pk) == "closed"
