"""After a rollback only traffic goes back: the merge and the tag stay on the environment's branch,
so the next release from it would ship the rolled-back code again. The environment says so, and
nothing else deploys there until that code is reverted or a change that fixes it forward names it;
the refusal says which, and the incident links both."""

from datetime import timedelta

import pytest
from django.db import transaction

from changes import releases
from changes import services as changes
from changes.models import ChangeRequest, StagingRun
from deployments import services
from deployments.models import Deployment
from incidents.models import Incident
from integrations import scm
from portal import clock
from portal.models import AuditEvent
from tests.changes.conftest import commit, git
from tests.conftest import client_for
from tests.deployments.conftest import publish
from tests.deployments.test_custody import deploy
from tests.deployments.test_engine import run
from tests.factories import approved_change

pytestmark = pytest.mark.django_db


@pytest.fixture
def rolled_back(ready, rita, alb):
    """`ready` released as v1.3.0 (merged and tagged on main), then rolled back at 25 % on its errors."""
    deployment = run(
        services.deploy(actor=rita, change=ready), until=lambda d: d.applied_weight == 25, alb=alb
    )
    publish(alb, "green", requests=1000, errors=50)
    deployment = run(deployment, alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    ready.refresh_from_db()
    assert ready.status == "rolled_back" and ready.release.merged_at is not None
    return ready


def next_change(repo, developer, production, branch: str, *, slot: bool = True, **fields) -> ChangeRequest:
    """Another change on a branch of its own from main, approved, soaked and (with `slot`) in its
    slot now."""
    git(repo, "checkout", "--quiet", "-b", branch, "main")
    commit(repo, f"{branch}.txt", f"{branch}\n", f"Work on {branch}")
    git(repo, "checkout", "--quiet", "main")
    change = approved_change(developer, production, title=f"Work on {branch}", source_branch=branch, **fields)
    staging = production.__class__.objects.get(name="staging")
    for result in ("deployed", "green"):
        StagingRun.objects.create(
            environment=staging,
            commit=change.approved_commit,
            version=branch,
            result=result,
            at=clock.now() - timedelta(hours=2),
        )
    if not slot:
        return ChangeRequest.objects.get(pk=change.pk)
    start = clock.now() + timedelta(minutes=1)
    with transaction.atomic():
        changes.change_schedule(actor=developer, change=change, start=start, end=start + timedelta(hours=2))
    clock.shift(timedelta(minutes=2))
    return ChangeRequest.objects.get(pk=change.pk)


def test_the_next_deploy_is_refused_until_the_rolled_back_code_is_reverted(
    rolled_back, repo, developer, production, rita, release_manager
):
    page = client_for(developer).get("/environments/").content.decode()
    link = f'<a href="/changes/{rolled_back.pk}/">{rolled_back.number}</a>'
    assert f"is ahead of live by {link} (rolled back) in v1.3.0" in page

    following = next_change(repo, developer, production, "thumbnails")
    events = AuditEvent.objects.count()
    refused = deploy(rita, following)
    assert refused.status_code == 409
    assert (
        f"Live version: main is ahead of live by {rolled_back.number} (rolled back) in v1.3.0: revert it, or "
        "name it on a change that fixes it forward"
    ) in refused.json()["reasons"]
    assert Deployment.objects.filter(change=following).count() == 0 and AuditEvent.objects.count() == events

    with transaction.atomic():
        reverted = releases.release_revert(actor=release_manager, change=rolled_back, scm=scm.repository())
    assert git(repo, "rev-parse", "main") == reverted.commit
    assert "is ahead of live" not in client_for(developer).get("/environments/").content.decode()
    started = deploy(rita, following)
    assert started.status_code == 202, started.json()


def test_a_change_that_names_the_rolled_back_one_fixes_it_forward(
    rolled_back, repo, developer, production, rita
):
    incident = Incident.objects.get(deployment__change=rolled_back)  # it rolled back by itself: a P1
    fix = next_change(repo, developer, production, "fix-render", fixes_forward=rolled_back)
    entry = incident.timeline.filter(kind="link").last()
    assert entry.text == f"{fix.number} filed to fix {rolled_back.number} forward: Work on fix-render."
    other = next_change(repo, developer, production, "unrelated", slot=False)

    def live_gate(change):
        gates = client_for(rita).get(f"/api/v1/changes/{change.pk}/").json()["gates"]
        return next(g["state"] for g in gates if g["name"] == "Live version")

    assert (live_gate(other), live_gate(fix)) == ("blocked", "ok")  # only the fix goes
    started = deploy(rita, fix)
    assert started.status_code == 202, started.json()


def test_only_a_rolled_back_release_still_on_the_branch_is_fixed_forward(ready, developer, production):
    body = {
        "title": "Fix nothing",
        "description": "…",
        "rollback_plan": "Revert.",
        "environment": "production",
        "source_branch": "fix",
        "fixes_forward": ready.pk,
    }
    response = client_for(developer).post("/api/v1/changes/", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"fixes_forward: {ready.number} left no code of its own")
