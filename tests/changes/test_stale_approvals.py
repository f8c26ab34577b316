"""Approvals are given on a commit. New commits on the change's branch dismiss them, as GitHub's
"dismiss stale approvals" does (audited, the people told, the page saying why), the change waits
for its quorum again, and the release merges only the commit that was approved. A policy may keep
approvals across new commits that only merge the target branch in; off by default."""

import pytest
from django.db import transaction

from changes import releases, services
from changes.models import Approval, ChangeRequest
from changes.selectors import change_detail, change_quorum, deploy_gates
from integrations import scm
from portal.models import AuditEvent, Notification
from tests.changes.conftest import commit, git
from tests.conftest import client_for
from tests.factories import (
    ApprovalPolicyFactory,
    EnvironmentFactory,
    ServiceFactory,
    UserFactory,
    change_create,
    otp_code,
    totp_device,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(repo, settings):
    """Production released from `repo` (on disk), one approval needed."""
    settings.GITHUB_REPOSITORY, settings.GIT_REPOSITORY_PATH = None, str(repo)
    policy = ApprovalPolicyFactory(
        name="One approval", min_approvals=1, min_code_owner_approvals=0, required_sign_offs=[]
    )
    return EnvironmentFactory(approval_policy=policy)


@pytest.fixture
def submitted(developer, production):
    change = change_create(developer, environment=production, services=[ServiceFactory()])
    with transaction.atomic():
        services.change_submit(actor=developer, change=change)
    change.refresh_from_db()
    return change


def approve(person, change):
    body = {"decision": "approve", "otp": otp_code(totp_device(person))}
    return client_for(person).post(f"/api/v1/changes/{change.pk}/approvals/", body, format="json")


def read(change):
    """What the worker does on GitHub's push event, or beat's catch-up: read the branch again."""
    return releases.pull_request_read(change=change, scm=scm.repository())


def push(repo, name: str, message: str) -> str:
    git(repo, "checkout", "--quiet", "staging")
    commit(repo, name, f"{message}\n", message)
    git(repo, "checkout", "--quiet", "main")
    return git(repo, "rev-parse", "staging")


def test_no_decision_is_taken_before_the_branch_is_read(submitted):
    qa = UserFactory(username="quinn", role="qa")
    events = AuditEvent.objects.count()
    response = approve(qa, submitted)
    assert response.status_code == 409
    assert "has not been read from the repository yet" in response.json()["detail"]
    assert not Approval.objects.exists() and AuditEvent.objects.count() == events
    page = client_for(qa).get(f"/changes/{submitted.pk}/").content.decode()
    assert "branch has not been read from the repository yet" in page and 'id="decide"' not in page
    read(submitted)
    assert 'id="decide"' in client_for(qa).get(f"/changes/{submitted.pk}/").content.decode()


def test_an_approval_records_the_commit_and_the_second_factor(submitted, repo):
    read(submitted)
    qa = UserFactory(username="quinn", role="qa")
    response = approve(qa, submitted)
    assert response.status_code == 201, response.json()
    head = git(repo, "rev-parse", "staging")
    assert response.json()["commit"] == head
    assert response.json()["second_factor"] == "authenticator app “Test phone” (TOTP)"
    change = ChangeRequest.objects.get(pk=submitted.pk)
    assert (change.status, change.approved_commit) == ("approved", head)
    event = AuditEvent.objects.get(object_id=str(change.pk), action="change.approved")
    assert event.after["commit"] == head


def test_a_push_after_the_quorum_dismisses_the_approvals_and_the_release_refuses_the_new_head(
    submitted, repo, developer
):
    """The attack: the quorum approves a benign diff, then the requester pushes more commits and
    the release merges them with the old approvals."""
    read(submitted)
    qa = UserFactory(username="quinn", role="qa")
    assert approve(qa, submitted).status_code == 201
    approved = git(repo, "rev-parse", "staging")
    evil = push(repo, "backdoor.txt", "Add a backdoor")

    read(submitted)
    change = ChangeRequest.objects.get(pk=submitted.pk)
    assert (change.status, change.approved_commit) == ("submitted", "")
    approval = Approval.objects.get(approver=qa)
    assert approval.dismissed_at is not None
    assert approval.dismissed_reason == (
        f"New commits since the approval: staging moved from {approved[:10]} to {evil[:10]}."
    )
    event = AuditEvent.objects.get(object_id=str(change.pk), action="change.approvals_dismissed")
    assert event.before == {"head": approved, "approved_commit": approved}
    assert event.after == {"head": evil, "dismissed": ["quinn"], "why": "new commits"}
    told = Notification.objects.filter(recipient=qa.email).last()
    assert told.subject == f"New commits on {change.number}: your approval was dismissed"
    assert Notification.objects.filter(
        recipient=developer.email, subject__startswith=f"New commits on {change.number}"
    ).exists()
    assert not change_quorum(change_detail(developer, change.pk)).satisfied

    page = client_for(qa).get(f"/changes/{change.pk}/").content.decode()
    assert "New commits since your approval." in page
    assert f"staging moved from {approved[:10]} to {evil[:10]}" in page

    # The quorum given again is given on the new head, which is what the release may merge.
    assert approve(qa, change).status_code == 201
    change.refresh_from_db()
    assert (change.status, change.approved_commit) == ("approved", evil)
    assert (
        "New commits since your approval" not in client_for(qa).get(f"/changes/{change.pk}/").content.decode()
    )


def test_a_release_merges_only_the_approved_commit(submitted, repo):
    read(submitted)
    assert approve(UserFactory(username="quinn", role="qa"), submitted).status_code == 201
    push(repo, "late.txt", "A late commit nobody read yet")  # no read: the portal does not know yet
    change = ChangeRequest.objects.get(pk=submitted.pk)
    change.status = "deploying"  # the engine's part
    change.save(update_fields=["status"])
    main = git(repo, "rev-parse", "main")
    with pytest.raises(releases.RepositoryRefused, match="the new commits were never approved"):
        releases.release_cut(change=change, scm=scm.repository())
    assert git(repo, "rev-parse", "main") == main


def test_a_request_for_changes_stands_across_new_commits(submitted, repo):
    read(submitted)
    bo = UserFactory(username="bo", role="qa")
    body = {"decision": "request_changes", "comment": "Add a test.", "otp": otp_code(totp_device(bo))}
    client_for(bo).post(f"/api/v1/changes/{submitted.pk}/approvals/", body, format="json")
    push(repo, "test.txt", "Add a test")
    read(submitted)
    assert Approval.objects.get(approver=bo).dismissed_at is None
    assert ChangeRequest.objects.get(pk=submitted.pk).status == "changes_requested"


def merge_main_into_staging(repo, *, extra: str = "") -> str:
    commit(repo, "hotfix.txt", "fixed on main\n", "Hotfix on main")
    git(repo, "checkout", "--quiet", "staging")
    git(repo, "merge", "--quiet", "--no-ff", "--no-commit", "main")
    if extra:
        (repo / "sneaky.txt").write_text(extra)
        git(repo, "add", "sneaky.txt")
    git(repo, "commit", "--quiet", "-m", "Merge main into staging")
    git(repo, "checkout", "--quiet", "main")
    return git(repo, "rev-parse", "staging")


@pytest.mark.parametrize("keep", [False, True])
def test_a_merge_of_the_target_keeps_approvals_only_when_the_policy_says_so(submitted, repo, keep):
    policy = submitted.environment.approval_policy
    policy.keep_approvals_on_target_merge = keep
    policy.save()
    read(submitted)
    assert approve(UserFactory(username="quinn", role="qa"), submitted).status_code == 201
    merged = merge_main_into_staging(repo)
    read(submitted)
    change = ChangeRequest.objects.get(pk=submitted.pk)
    if keep:
        assert (change.status, change.approved_commit) == ("approved", merged)
        assert Approval.objects.get().commit == merged and Approval.objects.get().dismissed_at is None
        event = AuditEvent.objects.get(object_id=str(change.pk), action="change.approvals_carried")
        assert event.after["head"] == merged and event.after["approvals"] == 1
    else:
        assert change.status == "submitted" and Approval.objects.get().dismissed_at is not None


def test_a_merge_of_the_target_that_slips_in_a_change_of_its_own_dismisses_them(submitted, repo):
    policy = submitted.environment.approval_policy
    policy.keep_approvals_on_target_merge = True
    policy.save()
    read(submitted)
    assert approve(UserFactory(username="quinn", role="qa"), submitted).status_code == 201
    merge_main_into_staging(repo, extra="not from main\n")
    read(submitted)
    assert ChangeRequest.objects.get(pk=submitted.pk).status == "submitted"
    assert Approval.objects.get().dismissed_at is not None


@pytest.fixture
def on_github(github_server, settings, developer):
    """Production released on the test GitHub server, one approval needed."""
    settings.GITHUB_REPOSITORY, settings.GITHUB_TOKEN = "acme/shop", "good-token"
    settings.GITHUB_API_URL = github_server.url
    policy = ApprovalPolicyFactory(
        name="One approval", min_approvals=1, min_code_owner_approvals=0, required_sign_offs=[]
    )
    change = change_create(developer, environment=EnvironmentFactory(approval_policy=policy))
    with transaction.atomic():
        services.change_submit(actor=developer, change=change)
    change.refresh_from_db()
    return change


def test_a_push_to_github_dismisses_the_portals_approvals_and_github_reviews_of_the_old_head(
    on_github, github_server, developer
):
    change, server = on_github, github_server
    pull = read(change)
    approved = server.branch_sha("staging")
    server.add_review(pull.number, "alex-owner", "APPROVED")
    assert approve(UserFactory(username="quinn", role="qa"), change).status_code == 201
    read(change)
    gate = {g["name"]: g for g in deploy_gates(change_detail(developer, change.pk), change_quorum(change))}
    assert gate["Approvals"]["state"] == "ok"

    pushed = server.push_commit("staging", {"backdoor.txt": "evil\n"}, "Add a backdoor")
    read(change)
    change = ChangeRequest.objects.get(pk=change.pk)
    assert change.status == "submitted" and Approval.objects.get().dismissed_at is not None
    assert change.pull.head_sha == pushed and approved != pushed
    assert change.pull.latest_reviews() == {}  # alex-owner reviewed the old head
