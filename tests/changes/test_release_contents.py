"""A release ships only commits of approved changes: each commit its branch brings belongs to the
change whose branch brings it (several, when branches share it); a commit of a change not approved
on it stops the deploy and the release, naming the commits and the changes with their states. The
change page lists what it would ship; several approved changes released together are one release
of all of them, each page linking to it."""

import pytest
from django.db import transaction

from changes import releases, services
from changes.models import ChangeRequest, Release
from changes.selectors import change_detail, change_quorum, deploy_gates
from integrations import scm
from tests.changes.conftest import commit, git
from tests.conftest import client_for
from tests.factories import (
    ApprovalPolicyFactory,
    EnvironmentFactory,
    UserFactory,
    change_create,
    deploying_at,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(repo, settings):
    settings.GITHUB_REPOSITORY, settings.GIT_REPOSITORY_PATH = None, str(repo)
    policy = ApprovalPolicyFactory(
        name="One approval",
        min_approvals=1,
        min_code_owner_approvals=0,
        required_sign_offs=[],
        signed_commits_required=False,
    )
    return EnvironmentFactory(approval_policy=policy)


def filed(developer, production, title: str, branch: str, *, state: str = "draft") -> ChangeRequest:
    """A change on `branch`, read as the worker reads it, and taken as far as `state`."""
    change = change_create(developer, environment=production, title=title, source_branch=branch)
    if state != "draft":
        with transaction.atomic():
            services.change_submit(actor=developer, change=change)
    releases.pull_request_read(change=ChangeRequest.objects.get(pk=change.pk), scm=scm.repository())
    if state == "approved":
        with transaction.atomic():
            services.change_decide(actor=UserFactory(role="qa"), change=change, decision="approve")
    return ChangeRequest.objects.get(pk=change.pk)


def branch(repo, name: str, start: str, *commits: tuple[str, str]) -> None:
    git(repo, "checkout", "--quiet", "-b", name, start)
    for path, message in commits:
        commit(repo, path, f"{message}\n", message)
    git(repo, "checkout", "--quiet", "main")


def gate(change, viewer) -> dict:
    detail = change_detail(viewer, change.pk)
    return next(g for g in deploy_gates(detail, change_quorum(detail)) if g["name"] == "Release contents")


def test_a_shared_branch_does_not_ship_other_changes_unapproved_work(developer, production, repo):
    """The demo's hole: deploying one change merged all of `staging`, the work of a draft and of
    a change only submitted, and nothing warned."""
    draft = filed(developer, production, "Export storyboards to PDF", "staging")
    waiting = filed(developer, production, "Move rendering to the new queue", "staging", state="submitted")
    ready = filed(developer, production, "Crop thumbnails", "staging", state="approved")
    said = gate(ready, developer)
    assert said["state"] == "blocked"
    assert said["detail"].startswith("2 commit(s) belong to changes not approved on them: ")
    assert said["detail"].endswith(f"of {draft.number} (draft), {waiting.number} (submitted)")

    body = client_for(developer).get(f"/api/v1/changes/{ready.pk}/").json()
    assert [c["subject"] for c in body["ships"]] == [
        "Move rendering to the new queue",
        "Crop thumbnails to the safe area",
    ]
    assert all(c["not_approved"] == [draft.number, waiting.number] for c in body["ships"])
    page = client_for(developer).get(f"/changes/{ready.pk}/").content.decode()
    assert (
        "What it ships" in page and f"{waiting.number}</a> Move rendering to the new queue (submitted" in page
    )

    # The release refuses too, before anything is merged.
    main = git(repo, "rev-parse", "main")
    with pytest.raises(releases.RepositoryRefused, match="not approved on them"):
        releases.release_cut(change=deploying_at(ready, scm.repository()), scm=scm.repository())
    assert git(repo, "rev-parse", "main") == main


def test_a_change_on_its_own_branch_ships_its_own_commits_only(developer, production, repo):
    branch(repo, "export", "main", ("export.txt", "Export storyboards to PDF"))
    branch(repo, "crop", "main", ("crop2.txt", "Crop thumbnails to the safe area"))
    filed(developer, production, "Export storyboards to PDF", "export")  # a draft, elsewhere
    ready = filed(developer, production, "Crop thumbnails", "crop", state="approved")
    assert gate(ready, developer) == {
        "name": "Release contents",
        "state": "ok",
        "detail": "1 commit(s), all its own",
    }
    release = releases.release_cut(change=deploying_at(ready, scm.repository()), scm=scm.repository())
    assert "Crop thumbnails to the safe area" in release.notes and "Export" not in release.notes
    assert list(release.shipped_with.all()) == []


def test_changes_approved_on_their_commits_are_released_together(developer, production, repo):
    branch(repo, "render", "main", ("render2.txt", "Move rendering to the new queue"))
    branch(repo, "crop", "render", ("crop2.txt", "Crop thumbnails to the safe area"))  # built on render
    under = filed(developer, production, "Faster render queue", "render", state="submitted")
    top = filed(developer, production, "Crop thumbnails", "crop", state="approved")
    assert gate(top, developer)["state"] == "blocked"  # the render queue is not approved yet

    with transaction.atomic():
        services.change_decide(actor=UserFactory(role="qa"), change=under, decision="approve")
    assert gate(top, developer)["detail"] == f"2 commit(s), released together with {under.number} (approved)"
    release = releases.release_cut(change=deploying_at(top, scm.repository()), scm=scm.repository())
    assert list(release.shipped_with.all()) == [ChangeRequest.objects.get(pk=under.pk)]
    tag = git(repo, "tag", "-l", "--format=%(contents)", release.version)
    assert f"{top.number} Crop thumbnails" in tag and f"{under.number} Faster render queue" in tag
    assert release.notes.startswith(
        f"Released together: {top.number} Crop thumbnails; {under.number} Faster render queue\n"
    )
    page = client_for(developer).get(f"/changes/{under.pk}/").content.decode()
    assert f'Released in <a href="/changes/{top.pk}/#release">{release.version}</a> together with' in page
    assert client_for(developer).get(f"/api/v1/changes/{under.pk}/").json()["released_in"] == [
        {"version": release.version, "change": top.number}
    ]
    assert Release.objects.get(change=top).head_commit == top.approved_commit
