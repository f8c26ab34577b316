"""A change merges into its environment's branch, never one the requester names: the checks, code
owners and signatures that judge it are that branch's. Branch names are refused unless git would
accept them, wherever they come in: the form, the API, GitHub's events and the repository calls."""

import hashlib
import hmac
import json

import pytest
from rest_framework.test import APIClient

from changes import releases
from changes.models import ChangeRequest
from integrations import scm
from portal.models import AuditEvent
from tests.changes.conftest import commit, git
from tests.conftest import client_for, verified_login
from tests.factories import EnvironmentFactory, ServiceFactory, change_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalogue")]

NEW_CHANGE = {
    "title": "Faster render queue",
    "description": "Moves rendering to the new queue.",
    "rollback_plan": "Switch traffic back to blue.",
    "environment": "production",
    "services": ["web"],
}


def nothing_written() -> tuple[int, int]:
    return ChangeRequest.objects.count(), AuditEvent.objects.count()


def test_a_change_aimed_at_the_requesters_own_branch_is_refused_with_nothing_written(developer):
    before = nothing_written()
    response = client_for(developer).post(
        "/api/v1/changes/", {**NEW_CHANGE, "target_branch": "dana-unprotected"}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert "production" in str(response.json()["errors"]["target_branch"])
    assert "(main for production)" in str(response.json()["errors"]["target_branch"])
    assert nothing_written() == before


def test_a_change_merges_into_its_environments_branch_whatever_it_was_filed_with(developer):
    response = client_for(developer).post("/api/v1/changes/", {**NEW_CHANGE, "target_branch": "main"})
    assert response.status_code == 201, response.json()
    assert response.json()["target_branch"] == "main"
    staging = EnvironmentFactory(name="staging", branch="staging", is_production=False)
    change = ChangeRequest.objects.get(pk=response.json()["id"])
    staging.branch = "develop"
    staging.save()
    assert change.target_branch == "main"


def test_editing_the_target_branch_is_refused_and_changes_nothing(developer):
    change = change_create(developer)
    events = AuditEvent.objects.count()
    response = client_for(developer).patch(
        f"/api/v1/changes/{change.pk}/", {"target_branch": "dana-unprotected"}, format="json"
    )
    assert response.status_code == 400, response.json()
    change.refresh_from_db()
    assert (change.target_branch, change.revision) == ("main", 1)
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    "branch",
    ["--upload-pack=touch /tmp/pwned", "main..evil", "feature/../main", "a b", "x.lock", "refs/heads/", "@"],
)
def test_a_source_branch_git_would_not_accept_is_a_400_with_nothing_written(developer, branch):
    before = nothing_written()
    response = client_for(developer).post("/api/v1/changes/", {**NEW_CHANGE, "source_branch": branch})
    assert response.status_code == 400, response.json()
    assert "source_branch" in response.json()["errors"]
    assert nothing_written() == before


def test_a_source_branch_git_would_not_accept_is_refused_on_edit_too(developer):
    change = change_create(developer)
    response = client_for(developer).patch(
        f"/api/v1/changes/{change.pk}/", {"source_branch": "-evil"}, format="json"
    )
    assert response.status_code == 400
    change.refresh_from_db()
    assert change.source_branch == "staging"


def test_a_change_cannot_release_its_environments_own_branch(developer):
    response = client_for(developer).post("/api/v1/changes/", {**NEW_CHANGE, "source_branch": "main"})
    assert response.status_code == 400
    assert "merges into" in response.json()["detail"]


def test_the_form_has_no_target_branch_and_files_into_the_environments(client, developer):
    from tests.factories import EnvironmentFactory

    verified_login(client, developer)
    form = client.get("/changes/new/")
    assert 'name="target_branch"' not in form.content.decode()
    response = client.post(
        "/changes/new/",
        {
            **{k: v for k, v in NEW_CHANGE.items() if k not in ("environment", "services")},
            "environment": EnvironmentFactory().pk,
            "services": [ServiceFactory().pk],
            "change_type": "normal",
            "risk": "medium",
            "version_bump": "minor",
            "source_branch": "staging",
            "target_branch": "dana-unprotected",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ChangeRequest.objects.get().target_branch == "main"


def test_the_gates_read_the_code_owners_of_the_environments_branch_not_the_requesters(
    developer, repo, settings
):
    """The requester's own branch drops CODEOWNERS; the change is judged by main's all the same."""
    commit(repo, "CODEOWNERS", "*  @alex-owner\n", "Name the code owners")
    git(repo, "checkout", "--quiet", "-b", "dana-unprotected")
    git(repo, "rm", "--quiet", "CODEOWNERS")
    git(repo, "commit", "--quiet", "-m", "Nobody owns anything")
    git(repo, "checkout", "--quiet", "main")
    git(repo, "checkout", "--quiet", "staging")
    git(repo, "merge", "--quiet", "main", "-m", "Bring main in")
    git(repo, "checkout", "--quiet", "main")
    settings.GIT_REPOSITORY_PATH = str(repo)
    change = change_create(developer)
    pull = releases.pull_request_read(change=change, scm=scm.repository())
    assert pull.owners == ["@alex-owner"]
    assert pull.owner_logins == ["alex-owner"]


def test_the_repository_refuses_a_branch_name_that_would_be_an_option(repo):
    local = scm.LocalGit(repo)
    for name in ("--output=/tmp/pwned", "main..staging", ""):
        with pytest.raises(scm.ScmError) as refused:
            local.head(name)
        assert refused.value.kind == "invalid"
    with pytest.raises(scm.ScmError):
        local.merge("staging", "-b", "Release")
    assert local.head("staging")


SECRET = "webhook-secret-for-tests"


def test_a_github_event_naming_a_malformed_branch_is_a_400_and_writes_nothing(developer, settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    change_create(developer, pull_request="42")
    payload = {
        "action": "submitted",
        "review": {"user": {"login": "alex-owner"}, "state": "approved", "commit_id": "a" * 40},
        "pull_request": {"number": 42, "head": {"ref": "staging..main"}, "base": {"ref": "main"}},
    }
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    events = AuditEvent.objects.count()
    response = APIClient().post(
        "/api/v1/webhooks/github/",
        body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="pull_request_review",
        HTTP_X_HUB_SIGNATURE_256=signature,
    )
    assert response.status_code == 400
    assert "pull_request.head.ref" in response.json()["errors"]
    assert AuditEvent.objects.count() == events
