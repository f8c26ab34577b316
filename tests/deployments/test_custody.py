"""The chain of custody at deploy time: the approved commit must still be the head of the change's
branch, read live from the repository; otherwise the deploy is refused (409) naming the link, with
nothing written."""

import pytest

from deployments.models import Deployment
from portal.models import AuditEvent
from tests.changes.conftest import commit, git
from tests.conftest import client_for
from tests.factories import otp_code, totp_device

pytestmark = pytest.mark.django_db


def deploy(user, change):
    body = {"otp": otp_code(totp_device(user))}
    return client_for(user).post(f"/api/v1/changes/{change.pk}/deploy/", body, format="json")


def test_a_push_after_approval_stops_the_deploy_before_anything_is_written(ready, repo, rita):
    """The portal has not read the new head yet (no event came): the deploy reads it itself."""
    approved = ready.approved_commit
    assert approved == git(repo, "rev-parse", "staging")
    git(repo, "checkout", "--quiet", "staging")
    commit(repo, "backdoor.txt", "evil\n", "Add a backdoor")
    git(repo, "checkout", "--quiet", "main")
    pushed = git(repo, "rev-parse", "staging")
    events = AuditEvent.objects.count()

    response = deploy(rita, ready)
    assert response.status_code == 409
    assert (
        f"Approved commit: staging moved to {pushed[:10]} after {approved[:10]} was approved; the new "
        "commits must be approved before anything ships."
    ) in response.json()["reasons"]
    assert not Deployment.objects.exists() and AuditEvent.objects.count() == events
    ready.refresh_from_db()
    assert ready.status == "scheduled"


def test_a_deploy_that_would_ship_another_changes_unapproved_work_is_refused(ready, developer, rita):
    from changes import releases
    from integrations import scm
    from tests.factories import change_create

    draft = change_create(developer, environment=ready.environment, title="Export storyboards to PDF")
    releases.pull_request_read(change=draft, scm=scm.repository())  # its branch is staging too
    events = AuditEvent.objects.count()
    response = deploy(rita, ready)
    assert response.status_code == 409
    assert any(
        r.startswith("Release contents: 2 commit(s) belong to changes not approved on them:")
        and r.endswith(f"of {draft.number} (draft)")
        for r in response.json()["reasons"]
    ), response.json()["reasons"]
    assert not Deployment.objects.exists() and AuditEvent.objects.count() == events


def test_a_deployed_change_shows_every_link_of_its_chain_matching(ready, repo, rita, developer, alb):
    from deployments import services
    from tests.deployments.test_engine import run

    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == Deployment.State.SUCCEEDED
    body = client_for(developer).get(f"/api/v1/changes/{ready.pk}/custody/").json()
    links = {link["link"]: link for link in body["links"]}
    assert list(links) == ["Approved commit", "Staging soak", "Merge", "Tag", f"Deployment {deployment.pk}"]
    assert all(link["verdict"] == "matches" for link in body["links"]) and body["broken"] == []
    approved = git(repo, "rev-parse", "staging")
    release = ready.release
    assert links["Approved commit"]["value"] == approved
    assert links["Approved commit"]["approvals"][0]["second_factor"] == ""  # given through the service
    assert links["Merge"]["value"] == release.merge_commit and links["Merge"]["parents"][1] == approved
    assert links["Tag"]["points_at"] == release.merge_commit
    assert links[f"Deployment {deployment.pk}"]["value"] == release.version
    # What the deployment checked is kept with it: at its start, then once the release was cut.
    (checked,) = body["checked"]
    assert [link["verdict"] for link in checked["links"]] == ["matches"] * 5
    page = client_for(developer).get(f"/changes/{ready.pk}/").content.decode()
    assert "Chain of custody" in page and page.count('<span class="verdict">matches</span>') == 5

    # Someone moves the tag afterwards: the live chain says so; the kept one says what was checked.
    git(repo, "tag", "-f", "-a", release.version, "-m", "moved", "main~1")
    body = client_for(developer).get(f"/api/v1/changes/{ready.pk}/custody/").json()
    assert body["broken"] == [
        f"Tag: differs: {release.version} points at {git(repo, 'rev-parse', 'main~1')[:10]}"
    ]
    assert [link["verdict"] for link in body["checked"][0]["links"]] == ["matches"] * 5
