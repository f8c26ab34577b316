"""One whole change under the policy Greenlight ships with, nothing weakened: three approvals
including a code owner (by CODEOWNERS), the security, product and engineering-lead sign-offs, every
person's checklist item vouched for, automated checks passing on the approved commit, every commit
signed, 48 hours of staging soak reported by CI; then scheduled, deployed through the API and
carried by the engine 0 → 25 → 50 → 100 % on the load balancer, the release merging exactly the
commit that was approved."""

import subprocess
from datetime import timedelta

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from catalogue.models import ApprovalPolicy
from changes import releases
from changes.models import ChangeRequest, Release
from changes.tasks import staging_soak_check
from deployments.models import Deployment, DeploySettings
from integrations import scm
from portal import clock
from portal import services as portal_services
from tests.changes.conftest import git
from tests.conftest import client_for
from tests.deployments.conftest import REGION, listener_weights
from tests.deployments.test_engine import run
from tests.factories import EnvironmentFactory, ServiceFactory, UserFactory, otp_code, totp_device

pytestmark = pytest.mark.django_db

SIGNER = ("Dana Dev", "dana@example.com")


@pytest.fixture
def signed_repo(repo, tmp_path, settings):
    """`repo` with CODEOWNERS on main naming @alex-owner, and a branch whose commits are signed
    with a key the allowed-signers file trusts (the portal signs its merges and tags with it too)."""
    key = tmp_path / "signing_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"* {(tmp_path / 'signing_key.pub').read_text()}")
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "-c", "commit.gpgsign=true"]
    (repo / "CODEOWNERS").write_text("*  @alex-owner\n")
    git(repo, "add", "CODEOWNERS")
    git(repo, *signing, "commit", "--quiet", "-m", "Name the code owners")
    git(repo, "checkout", "--quiet", "-b", "render-queue")
    (repo / "render.txt").write_text("new queue\n")
    git(repo, "add", "render.txt")
    git(repo, *signing, "commit", "--quiet", "-m", "Move rendering to the new queue")
    git(repo, "checkout", "--quiet", "main")
    settings.GITHUB_REPOSITORY, settings.GIT_REPOSITORY_PATH = None, str(repo)
    settings.GIT_SIGNING_KEY, settings.GIT_ALLOWED_SIGNERS = str(key), str(signers)
    return repo


@pytest.fixture
def production(alb, colours, signed_repo):
    """Production under the default policy, deployed blue-green through the load balancer."""
    policy = ApprovalPolicy.objects.get(name="Production process (default)")
    assert (policy.min_approvals, policy.min_code_owner_approvals, policy.required_sign_offs) == (
        3,
        1,
        ["security", "product", "engineering_lead"],
    )
    assert policy.checks_must_pass and policy.signed_commits_required and policy.soak_hours == 48
    environment = EnvironmentFactory(name="production", approval_policy=policy)
    EnvironmentFactory(
        name="staging", display_name="Staging", branch="staging", is_production=False, approval_policy=policy
    )
    DeploySettings.objects.create(
        environment=environment,
        aws_region=REGION,
        listener_arn=alb["listener"],
        blue_target_group_arn=alb["blue"],
        green_target_group_arn=alb["green"],
        blue_url=colours["blue"].url,
        green_url=colours["green"].url,
        min_requests=100,
        database_instance="shop-db",
        deployer=DeploySettings.Deployer.SIMULATED,
        telemetry=DeploySettings.Telemetry.CLOUDWATCH,
    )
    return environment


def post(user, path: str, **body):
    return client_for(user).post(path, {"otp": otp_code(totp_device(user)), **body}, format="json")


def test_a_change_goes_through_the_whole_default_policy_and_ships_the_approved_commit(
    production, signed_repo, alb
):
    dana = UserFactory(username="dana", role="developer")
    alex = UserFactory(username="alex", role="developer", github_login="alex-owner")
    bo, casey = UserFactory(username="bo", role="qa"), UserFactory(username="casey", role="devops")
    sam = UserFactory(username="sam", role="developer", capacities=["security"])
    pat = UserFactory(username="pat", role="qa", capacities=["product"])
    lee = UserFactory(username="lee", role="developer", capacities=["engineering_lead"])
    rita = UserFactory(username="rita", role="release_manager")
    ServiceFactory(name="web", environments=[production])

    filed = client_for(dana).post(
        "/api/v1/changes/",
        {
            "title": "Faster render queue",
            "description": "Moves rendering to the new queue.",
            "rollback_plan": "Switch traffic back to blue.",
            "environment": "production",
            "services": ["web"],
            "source_branch": "render-queue",
            "version_bump": "minor",
        },
        format="json",
    )
    assert filed.status_code == 201, filed.json()
    change = ChangeRequest.objects.get(pk=filed.json()["id"])
    assert client_for(dana).post(f"/api/v1/changes/{change.pk}/submit/").status_code == 200
    releases.pull_request_read(change=change, scm=scm.repository())  # the worker's read
    head = git(signed_repo, "rev-parse", "render-queue")

    # CI: the checks on the head, and the commit's 48 hours in staging, reported with a ci token.
    releases.check_run_record(
        change=change, name="ci/test", status="completed", conclusion="success", head_sha=head, url=""
    )
    _token, secret = portal_services.api_token_create(actor=casey, name="CI", expires_in_days=7, scope="ci")
    ci = APIClient()
    ci.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    for result in ("deployed", "green"):
        body = {"environment": "staging", "commit": head, "version": "build-7", "result": result}
        assert ci.post("/api/v1/staging-runs/", body, format="json").status_code == 201

    for person, capacity in [(alex, ""), (bo, ""), (casey, ""), (sam, "security"), (pat, "product")]:
        given = post(person, f"/api/v1/changes/{change.pk}/approvals/", decision="approve", capacity=capacity)
        assert given.status_code == 201, given.json()
        assert ChangeRequest.objects.get(pk=change.pk).status == "submitted"  # not yet: lee's sign-off
    assert (
        post(lee, f"/api/v1/changes/{change.pk}/approvals/", decision="approve", capacity="engineering_lead")
    ).status_code == 201
    detail = client_for(dana).get(f"/api/v1/changes/{change.pk}/").json()
    assert detail["status"] == "approved" and detail["approved_commit"] == head
    assert detail["quorum"]["code_owner_approvals"] == 1
    assert {a["commit"] for a in detail["approvals"]} == {head}

    # Each person's item, by those the policy lets vouch for it.
    for item in detail["checklist"]:
        if (
            item["integration"]
            or item["done"]
            or "pre" not in item["phases"]
            and "before" not in item["phases"]
        ):
            continue
        by = sam if item["vouched_by"] == "security" else dana
        ticked = client_for(by).patch(
            f"/api/v1/changes/{change.pk}/checklist/{item['id']}/",
            {"done": True, "evidence": "https://wiki.example.com/render-queue"},
            format="json",
        )
        assert ticked.status_code == 200, (item["key"], ticked.json())

    clock.shift(timedelta(hours=48, minutes=1))
    staging_soak_check()
    start = clock.now() + timedelta(minutes=1)
    scheduled = client_for(dana).post(
        f"/api/v1/changes/{change.pk}/schedule/",
        {"window_start": start.isoformat(), "window_end": (start + timedelta(hours=2)).isoformat()},
        format="json",
    )
    assert scheduled.status_code == 200, scheduled.json()
    clock.shift(timedelta(minutes=2))
    gates = client_for(rita).get(f"/api/v1/changes/{change.pk}/").json()["gates"]
    assert [g["name"] for g in gates if g["state"] != "ok"] == []
    judged = {"Approvals", "Checklist", "Staging soak", "When", "Automated checks", "Signed commits"}
    assert {g["name"] for g in gates} >= judged

    started = post(rita, f"/api/v1/changes/{change.pk}/deploy/")
    assert started.status_code == 202, started.json()
    with transaction.atomic():
        deployment = Deployment.objects.get(pk=started.json()["id"])
    deployment = run(deployment, alb=alb)
    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    assert listener_weights(alb) == {"green": 100, "blue": 0}
    release = Release.objects.get(change=change)
    assert release.head_commit == head
    assert git(signed_repo, "rev-parse", f"{release.merge_commit}^2") == head  # exactly what was approved
    assert git(signed_repo, "rev-parse", f"{release.version}^{{commit}}") == release.merge_commit
    change.refresh_from_db()
    assert change.status == "completed"
    custody = client_for(dana).get(f"/api/v1/changes/{change.pk}/custody/").json()
    assert custody["broken"] == [] and {link["verdict"] for link in custody["links"]} == {"matches"}
    approved_by = custody["links"][0]["approvals"]
    assert {a["by"] for a in approved_by} == {"alex", "bo", "casey", "sam", "pat", "lee"}
    assert {a["second_factor"] for a in approved_by} == {"authenticator app “Test phone” (TOTP)"}
