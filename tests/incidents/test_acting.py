"""Acting from an incident: rolling back the deployment it follows (release managers, or SREs while
it is open, each with a fresh code), asking for the code revert of its release (made by a task in a
real repository), and filing an emergency change that links back to it."""

import pytest

from changes import releases
from incidents import services
from incidents.models import Incident
from incidents.tasks import incident_revert_run
from integrations.scm import LocalGit
from portal.models import AuditEvent
from tests.changes.conftest import git, repo  # noqa: F401 (a fixture)
from tests.changes.test_release import deploying  # noqa: F401 (a fixture)
from tests.conftest import client_for
from tests.deployments.test_releases import production, release  # noqa: F401 (a fixture)
from tests.factories import otp_code, totp_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def following(production, developer):  # noqa: F811
    """An open P1 that follows the live release v1.1.0 of production (v1.0.0 still kept)."""
    release(production, "v1.0.0", "succeeded")
    live = release(production, "v1.1.0", "succeeded")
    return services.incident_declare(
        actor=developer, title="Checkout fails since v1.1.0", severity="P1", deployment=live
    )


def post_rollback(user, incident, **form):
    fields = {"rollback-reason": "Checkout fails", "rollback-otp": otp_code(totp_device(user)), **form}
    return client_for(user).post(
        f"/incidents/{incident.pk}/rollback/", {k: v for k, v in fields.items() if v}
    )


def test_declaring_on_a_deployment_links_its_change_too(following):
    assert following.change == following.deployment.change
    assert following.timeline.filter(kind="link", data__deployment=following.deployment_id).exists()


def test_an_sre_rolls_back_the_deployment_an_open_incident_follows_with_a_code(following, sre):
    page = client_for(sre).get(f"/incidents/{following.pk}/").content.decode()
    assert "Roll back v1.1.0" in page and "File an emergency change" in page

    response = post_rollback(sre, following)
    assert response.status_code == 302 and response["Location"] == f"/incidents/{following.pk}/"
    live = following.deployment
    live.refresh_from_db()
    assert live.rollback_requested and live.rollback_by == sre and live.state == "rolling_back"
    assert live.rollback_reason == f"{following.number}: Checkout fails"
    entry = following.timeline.get(kind="rollback")
    assert entry.actor == sre and entry.text == (
        f"Rollback of v1.1.0 in {live.environment} asked by {sre.display_name}: Checkout fails"
    )
    assert AuditEvent.objects.filter(action="deployment.rollback", object_id=str(live.pk)).exists()
    event = AuditEvent.objects.get(action="incident.rollback", object_id=str(following.pk))
    assert event.actor_id == sre.pk and event.after["deployment"] == live.pk


@pytest.mark.parametrize(
    ("form", "says"),
    [({"rollback-otp": "000000"}, "not valid"), ({"rollback-reason": ""}, "This field is required.")],
)
def test_a_rollback_without_a_good_code_or_a_reason_is_refused_and_changes_nothing(
    following, sre, form, says
):
    response = post_rollback(sre, following, **form)
    assert response.status_code == 400 and says in response.content.decode()
    following.deployment.refresh_from_db()
    assert not following.deployment.rollback_requested and not following.timeline.filter(kind="rollback")


def test_those_without_the_right_may_not_roll_back_from_the_incident(following, developer):
    assert "Roll back v1.1.0" not in client_for(developer).get(f"/incidents/{following.pk}/").content.decode()
    assert post_rollback(developer, following).status_code == 403
    following.deployment.refresh_from_db()
    assert not following.deployment.rollback_requested


def test_an_sre_may_no_longer_roll_back_once_the_incident_is_resolved(following, sre):
    services.incident_resolve(actor=sre, incident=following)
    api = client_for(sre)
    response = api.post(
        f"/api/v1/incidents/{following.pk}/rollback/",
        {"reason": "Late", "otp": otp_code(totp_device(sre))},
        format="json",
    )
    assert response.status_code == 409 and "is resolved" in response.json()["detail"]


def test_an_sres_right_on_the_deployment_itself_ends_with_the_incident(following, sre):
    """Through the deployment's own rollback too: a change filed to fix the incident (it names
    the incident) gives an SRE the right only while that incident is open."""
    from changes.models import ChangeRequest

    ChangeRequest.objects.filter(pk=following.deployment.change_id).update(incident=following)
    services.incident_resolve(actor=sre, incident=following)
    response = client_for(sre).post(
        f"/api/v1/deployments/{following.deployment.pk}/rollback/",
        {"reason": "Late", "otp": otp_code(totp_device(sre))},
        format="json",
    )
    assert response.status_code == 403
    following.deployment.refresh_from_db()
    assert not following.deployment.rollback_requested


def test_the_api_rolls_back_and_refuses_an_incident_that_follows_no_deployment(following, release_manager):
    api = client_for(release_manager)
    device = totp_device(release_manager)
    response = api.post(
        f"/api/v1/incidents/{following.pk}/rollback/",
        {"reason": "Checkout fails", "otp": otp_code(device)},
        format="json",
    )
    assert response.status_code == 200 and response.json()["timeline"][-1]["kind"] == "rollback"
    again = api.post(
        f"/api/v1/incidents/{following.pk}/rollback/",
        {"reason": "Again", "otp": otp_code(device)},
        format="json",
    )
    assert again.status_code == 409 and "rolling back already" in again.json()["detail"]

    alone = services.incident_declare(actor=release_manager, title="Slow search", severity="P2")
    response = api.post(
        f"/api/v1/incidents/{alone.pk}/rollback/",
        {"reason": "Why not", "otp": otp_code(device)},
        format="json",
    )
    assert response.status_code == 409 and "follows no deployment" in response.json()["detail"]


def test_the_code_revert_is_asked_for_and_made_by_a_task_in_the_repository(
    repo,  # noqa: F811
    deploying,  # noqa: F811
    release_manager,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.GITHUB_REPOSITORY, settings.GIT_REPOSITORY_PATH, settings.GIT_SIGNING_KEY = "", str(repo), ""
    incident = services.incident_declare(
        actor=release_manager, title="Renders stuck", severity="P1", change=deploying
    )
    with pytest.raises(services.IncidentRefused, match="follows no tagged release"):
        services.incident_revert(actor=release_manager, incident=incident)
    release_made = releases.release_cut(change=deploying, scm=LocalGit(repo))

    with django_capture_on_commit_callbacks() as queued:
        response = client_for(release_manager).post(
            f"/incidents/{incident.pk}/revert/", {"revert-otp": otp_code(totp_device(release_manager))}
        )
    assert response.status_code == 302
    assert len([c for c in queued if c.__qualname__.startswith("incident_revert.")]) == 1  # the task
    twice = client_for(release_manager).post(
        f"/incidents/{incident.pk}/revert/", {"revert-otp": otp_code(totp_device(release_manager))}
    )
    assert twice.status_code == 400 and "asked for already: its outcome comes next" in twice.content.decode()
    asked = incident.timeline.get(kind="rollback")
    assert asked.text == f"Code revert of v1.3.0 asked by {release_manager.display_name}."
    assert AuditEvent.objects.filter(action="incident.revert", object_id=str(incident.pk)).exists()

    said = incident_revert_run.apply(args=[incident.pk, release_manager.pk], throw=True).get()
    head = git(repo, "rev-parse", "main")
    assert (
        said == f"Reverted in commit {head[:10]}."
        and git(repo, "rev-parse", "main^") == release_made.merge_commit
    )
    assert incident.timeline.filter(kind="rollback").last().text == said


def test_a_revert_that_fails_is_said_on_the_timeline(repo, deploying, release_manager, settings):  # noqa: F811
    settings.GITHUB_REPOSITORY, settings.GIT_REPOSITORY_PATH, settings.GIT_SIGNING_KEY = "", str(repo), ""
    incident = services.incident_declare(
        actor=release_manager, title="Renders stuck", severity="P1", change=deploying
    )
    releases.release_cut(change=deploying, scm=LocalGit(repo))
    git(repo, "tag", "-d", "v1.3.0")  # someone removed the tag by hand
    said = incident_revert_run.apply(args=[incident.pk, release_manager.pk], throw=True).get()
    assert said.startswith("The code revert failed:") and "v1.3.0" in said
    assert incident.timeline.filter(kind="rollback").last().text == said


def test_an_emergency_change_is_filed_from_the_incident_and_links_back(following, developer, sre):
    page = client_for(developer).get(f"/incidents/{following.pk}/").content.decode()
    assert f"/changes/new/?change_type=emergency&amp;incident={following.pk}" in page
    form = client_for(developer).get(f"/changes/new/?change_type=emergency&incident={following.pk}&title=Fix")
    body = form.content.decode()
    assert 'value="emergency" selected' in body and f'value="{following.pk}" selected' in body

    from tests.factories import change_create

    services.incident_acknowledge(actor=sre, incident=following)  # not the requester's word alone
    change = change_create(developer, change_type="emergency", incident=following, title="Fix checkout")
    entry = Incident.objects.get(pk=following.pk).timeline.filter(kind="link").last()
    assert entry.text == f"Emergency change {change.number} filed to fix it: Fix checkout."
    assert entry.data == {"change": change.pk} and entry.actor == developer


def test_the_revert_is_refused_without_the_right_or_a_good_code(repo, deploying, release_manager, developer):  # noqa: F811
    incident = services.incident_declare(
        actor=release_manager, title="Renders stuck", severity="P1", change=deploying
    )
    releases.release_cut(change=deploying, scm=LocalGit(repo))
    refused = client_for(developer).post(
        f"/incidents/{incident.pk}/revert/", {"revert-otp": otp_code(totp_device(developer))}
    )
    assert refused.status_code == 403
    bad_code = client_for(release_manager).post(f"/incidents/{incident.pk}/revert/", {"revert-otp": "000000"})
    assert bad_code.status_code == 400 and "not valid" in bad_code.content.decode()
    assert not incident.timeline.filter(kind="rollback").exists()
    assert not AuditEvent.objects.filter(action="incident.revert").exists()


def test_the_api_rollback_needs_a_code(following, release_manager):
    response = client_for(release_manager).post(
        f"/api/v1/incidents/{following.pk}/rollback/", {"reason": "Checkout fails"}, format="json"
    )
    assert response.status_code == 403 and "needs a current code" in response.json()["detail"]
    following.deployment.refresh_from_db()
    assert not following.deployment.rollback_requested and not following.timeline.filter(kind="rollback")
