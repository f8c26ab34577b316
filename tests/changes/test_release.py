"""Cutting a change's release in a real repository (the local git backend): merge, tag, notes,
exactly once; a failure at any step is finished by a retry, never done twice (the kill between
merge and tag, for real, is in test_release_kill.py)."""

import pytest
from django.core.exceptions import PermissionDenied

from changes import releases
from changes.models import Release
from integrations.scm import LocalGit
from portal.models import AuditEvent
from tests.changes.conftest import commit, git
from tests.factories import ApprovalPolicyFactory, EnvironmentFactory, change_create, deploying_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def deploying(developer, repo):
    """A change approved on the head of staging whose deployment has started, under a policy that
    does not ask for signatures (the signature rule has its own test)."""
    policy = ApprovalPolicyFactory(name="No signatures", signed_commits_required=False)
    environment = EnvironmentFactory(approval_policy=policy)
    change = change_create(
        developer, environment=environment, title="Faster render queue", version_bump="minor"
    )
    return deploying_at(change, LocalGit(repo))


def merges_on_main(repo) -> int:
    return len(git(repo, "rev-list", "--merges", "main").split())


def test_release_cut_merges_tags_and_publishes_the_notes(repo, deploying):
    release = releases.release_cut(change=deploying, scm=LocalGit(repo))
    assert (release.version, release.previous_tag) == ("v1.3.0", "v1.2.0")
    assert release.merge_commit == git(repo, "rev-parse", "main") and merges_on_main(repo) == 1
    assert git(repo, "rev-parse", "v1.3.0^{commit}") == release.merge_commit
    assert "Move rendering to the new queue" in release.notes and release.done
    message = git(repo, "tag", "-l", "--format=%(contents)", "v1.3.0")
    assert f"{deploying.number} Faster render queue" in message and "Crop thumbnails" in message
    events = AuditEvent.objects.filter(object_id=str(deploying.pk), action__startswith="release.")
    actions = list(events.order_by("id").values_list("action", flat=True))
    assert actions == [
        "release.begin",
        "release.head",  # the commit to merge, kept before the merge
        "release.merged",
        "release.tagged",
        "release.published",
    ]
    again = releases.release_cut(change=deploying, scm=LocalGit(repo))
    assert (
        again.pk == release.pk
        and merges_on_main(repo) == 1
        and git(repo, "tag", "--list").split() == ["v1.2.0", "v1.3.0"]
    )


def test_a_merge_made_just_before_a_crash_is_found_not_made_again(repo, deploying, monkeypatch):
    real_merge = LocalGit.merge

    def merged_then_killed(self, *args, **kwargs):
        real_merge(self, *args, **kwargs)
        raise SystemExit("worker killed before recording the merge")

    monkeypatch.setattr(LocalGit, "merge", merged_then_killed)
    head = git(repo, "rev-parse", "staging")
    with pytest.raises(SystemExit):
        releases.release_cut(change=deploying, scm=LocalGit(repo))
    stopped = Release.objects.get(change=deploying)
    assert stopped.merged_at is None and stopped.head_commit == head  # the merge's record was lost
    monkeypatch.undo()
    git(repo, "checkout", "--quiet", "staging")
    commit(repo, "late.txt", "not checked\n", "A late commit")  # staging moves on before the retry
    git(repo, "checkout", "--quiet", "main")
    release = releases.release_cut(change=deploying, scm=LocalGit(repo))
    assert merges_on_main(repo) == 1 and release.merge_commit == git(repo, "rev-parse", "main")
    assert git(repo, "rev-parse", "main^2") == head and not (repo / "late.txt").exists()


def test_a_head_merged_outside_the_release_is_not_called_nothing_to_release(repo, deploying):
    releases.pull_request_read(change=deploying, scm=LocalGit(repo))  # the gates judge staging's head
    git(repo, "merge", "--quiet", "--ff-only", "staging")  # and someone fast-forwards main to it
    with pytest.raises(
        releases.RepositoryRefused,
        match=r"[0-9a-f]{10} \(the head of staging that was checked\) is on main already, but the merge that "
        r"brought it cannot be found: it was merged outside this release .* name that merge commit on the "
        "release by hand",
    ) as refused:
        releases.release_cut(change=deploying, scm=LocalGit(repo))
    assert refused.value.kind == "missing" and git(repo, "tag", "--list").split() == ["v1.2.0"]


def test_a_head_in_the_last_release_already_is_nothing_to_release(repo, deploying):
    git(repo, "checkout", "--quiet", "-B", "staging", "main")  # staging is where v1.2.0 is
    deploying_at(deploying, LocalGit(repo))  # and that is what was approved
    with pytest.raises(releases.RepositoryRefused, match="is in v1.2.0 already: there is nothing to release"):
        releases.release_cut(change=deploying, scm=LocalGit(repo))
    assert merges_on_main(repo) == 0


def test_a_change_that_is_not_deploying_is_not_released(repo, developer):
    change = change_create(developer)
    with pytest.raises(releases.ChangeError, match="its release is cut once it deploys") as refused:
        releases.release_cut(change=change, scm=LocalGit(repo))
    assert refused.value.conflict and not Release.objects.exists()


def test_unsigned_commits_stop_the_release_before_anything_is_merged(repo, deploying):
    policy = deploying.environment.approval_policy
    policy.signed_commits_required = True
    policy.save()
    before = git(repo, "rev-parse", "main")
    with pytest.raises(releases.ChangeError, match=r"2 commit\(s\) on staging are not signed"):
        releases.release_cut(change=deploying, scm=LocalGit(repo))
    assert git(repo, "rev-parse", "main") == before
    assert "not signed" in Release.objects.get(change=deploying).error


def test_a_conflict_is_told_in_words_and_leaves_main_alone(repo, deploying):
    commit(repo, "render.txt", "patched on main\n", "Hotfix on main")
    before = git(repo, "rev-parse", "main")
    with pytest.raises(
        releases.ChangeError, match="staging does not merge cleanly into main: conflicts in render.txt"
    ):
        releases.release_cut(change=deploying, scm=LocalGit(repo))
    assert git(repo, "rev-parse", "main") == before and "v1.3.0" not in git(repo, "tag", "--list")


def test_a_version_tagged_already_is_refused(repo, deploying):
    git(repo, "tag", "-a", "v1.3.0", "-m", "made by hand", "staging")  # off main: v1.2.0 stays the last
    with pytest.raises(releases.ChangeError, match="v1.3.0 exists already: it would be tagged twice"):
        releases.release_cut(change=deploying, scm=LocalGit(repo))
    assert merges_on_main(repo) == 0


def test_a_release_manager_reverts_a_released_change_with_one_commit(
    repo, deploying, release_manager, developer
):
    with pytest.raises(releases.ChangeError, match="has no tagged release to revert"):
        releases.release_revert(actor=release_manager, change=deploying, scm=LocalGit(repo))
    release = releases.release_cut(change=deploying, scm=LocalGit(repo))
    with pytest.raises(PermissionDenied, match="roll back any deployment"):  # a 403, as everywhere
        releases.release_revert(actor=developer, change=deploying, scm=LocalGit(repo))
    commit = releases.release_revert(actor=release_manager, change=deploying, scm=LocalGit(repo)).commit
    assert (
        git(repo, "rev-parse", "main") == commit and git(repo, "rev-parse", "main^") == release.merge_commit
    )
    assert not (repo / "render.txt").exists()
    event = AuditEvent.objects.get(object_id=str(deploying.pk), action="release.revert")
    assert (
        event.after == {"version": "v1.3.0", "commit": commit, "url": ""}
        and event.actor_id == release_manager.pk
    )
