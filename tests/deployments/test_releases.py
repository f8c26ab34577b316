"""The Releases page and GET /api/v1/environments/{name}/releases/: which version is live in each
environment (after a rollback after go-live, the one before it again; a deployment that failed
before going live never), the history with its filters, "roll back to this release" while the old
colour is kept and only for those who may, a new change filled in for an older version, and a query
count that does not grow with the deployments. Deployments are made as the engine leaves them; the
engine itself is tested in test_engine.py."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalogue.models import Service
from changes.models import ChangeRequest
from deployments import selectors
from deployments.models import Colour, Deployment, DeploySettings
from portal import clock
from portal.models import AuditEvent
from tests.conftest import client_for, verified_login
from tests.factories import (
    EnvironmentFactory,
    IncidentFactory,
    ServiceFactory,
    UserFactory,
    otp_code,
    totp_device,
)

pytestmark = pytest.mark.django_db

ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:{}"
LIVE = (Deployment.State.MONITORING, Deployment.State.SUCCEEDED)


@pytest.fixture
def production(db):
    """Production and staging, each deployed blue-green (blue live), running web and api."""
    production = EnvironmentFactory(name="production")
    staging = EnvironmentFactory(
        name="staging", display_name="Staging", branch="staging", is_production=False
    )
    for environment in (production, staging):
        DeploySettings.objects.create(
            environment=environment,
            listener_arn=ARN.format(f"listener/app/{environment.name}/1/2"),
            blue_target_group_arn=ARN.format(f"targetgroup/{environment.name}-blue/1"),
            green_target_group_arn=ARN.format(f"targetgroup/{environment.name}-green/2"),
        )
    ServiceFactory(name="web", environments=[production, staging])
    ServiceFactory(name="api", environments=[production])
    return production


@pytest.fixture
def staging(production):
    return production.__class__.objects.get(name="staging")


def release(
    environment, version: str, state: str, *, live: bool = True, services=("web",), by=None, **fields
):
    """A change released into the environment, left as the engine leaves it: `live` when all
    traffic reached its colour (the environment's live colour follows while it is live)."""
    by = by or UserFactory(username="rita", first_name="Rita", role="release_manager")
    deploy = DeploySettings.objects.get(environment=environment)
    at = clock.now() - timedelta(days=30) + timedelta(hours=Deployment.objects.count())
    change = ChangeRequest.objects.create(
        title=f"Release {version or 'that failed'}",
        description="What changes.",
        rollback_plan="Traffic back to the other colour.",
        environment=environment,
        requester=by,
        created_at=at,
        updated_at=at,
    )
    change.services.set(Service.objects.filter(name__in=services))
    deployment = Deployment.objects.create(
        change=change,
        environment=environment,
        state=state,
        started_by=by,
        created_at=at,
        ended_at=None if state in (Deployment.State.MONITORING, Deployment.State.ROLLING_BACK) else at,
        version=version,
        from_colour=deploy.live_colour,
        to_colour=Colour(deploy.live_colour).other,
        plan=[25, 50, 100],
        bake_seconds=300,
        analysis_seconds=60,
        state_since=at,
        next_run_at=at,
        live_at=at + timedelta(minutes=20) if live else None,
        **fields,
    )
    if state in LIVE:
        deploy.live_colour = deployment.to_colour
        deploy.save(update_fields=["live_colour"])
    return deployment


def sections(user, **filters) -> dict[str, selectors.EnvironmentReleases]:
    return {s.environment.name: s for s in selectors.releases(user, **filters)}


def page(user, query: str = "") -> str:
    response = client_for(user).get(f"/releases/{query}")
    assert response.status_code == 200
    return response.content.decode()


# Which version is live.


def test_the_newest_release_that_went_live_is_live_and_the_one_before_superseded(production, developer):
    first = release(production, "v1.0.0", "succeeded")
    second = release(production, "v1.1.0", "succeeded")
    shown = sections(developer)["production"]
    assert shown.live == second and shown.previous == first
    assert [(r.version, r.outcome) for r in shown.history] == [("v1.1.0", "live"), ("v1.0.0", "superseded")]
    body = page(developer)
    assert "v1.1.0</strong> is live since" in body and second.change.number in body
    assert "is live since" in body and 'on <span class="colour-blue">blue</span>' in body  # green → blue
    assert "being monitored" not in body


def test_a_release_still_being_monitored_is_live_and_said_to_be(production, developer):
    release(production, "v1.0.0", "succeeded")
    watched = release(production, "v1.1.0", "monitoring", monitor_until=clock.now() + timedelta(hours=1))
    assert sections(developer)["production"].live == watched
    assert "being monitored" in page(developer)


def test_after_a_rollback_after_go_live_the_version_before_it_is_live_again(production, developer):
    first = release(production, "v1.0.0", "succeeded")
    release(
        production,
        "v1.1.0",
        "rolled_back",
        rollback_by=developer,
        rollback_reason="Checkout errors after go-live",
    )
    shown = sections(developer)["production"]
    assert shown.live == first
    assert [(r.version, r.outcome) for r in shown.history] == [("v1.1.0", "rolled_back"), ("v1.0.0", "live")]
    body = page(developer)
    assert "v1.0.0</strong> is live" in body and "Checkout errors after go-live" in body


def test_deployments_that_failed_before_going_live_do_not_count(production, developer):
    first = release(production, "v1.0.0", "succeeded")
    release(production, "v1.1.0", "failed", live=False, error="Green did not become healthy in 600 s.")
    release(production, "v1.1.1", "rolled_back", live=False, rollback_reason="Smoke tests failed")
    release(production, "", "failed", live=False, error="The release could not be cut.")
    shown = sections(developer)["production"]
    assert shown.live == first
    assert [r.outcome for r in shown.history] == ["failed", "stopped", "failed", "live"]
    assert "Green did not become healthy" in page(developer)


def test_an_environment_without_a_release_says_so(production, staging, developer):
    release(production, "v1.0.0", "succeeded")
    assert sections(developer)["staging"].live is None
    assert "No release has gone live here yet." in page(developer)


# The history and its filters.


def test_the_history_is_newest_first_per_environment_and_filtered_by_service_and_environment(
    production, staging, developer
):
    release(production, "v1.0.0", "succeeded", services=("web",))
    release(staging, "v1.1.0", "succeeded", services=("web",))
    release(production, "v1.1.0", "succeeded", services=("api",))
    release(production, "v1.2.0", "succeeded", services=("web", "api"))
    every = sections(developer)
    assert [r.version for r in every["production"].history] == ["v1.2.0", "v1.1.0", "v1.0.0"]
    assert [r.version for r in every["staging"].history] == ["v1.1.0"]
    assert [r.version for r in sections(developer, service="api")["production"].history] == [
        "v1.2.0",
        "v1.1.0",
    ]
    # The live release stays the environment's whatever the filter.
    assert sections(developer, service="web")["production"].live.version == "v1.2.0"
    body = page(developer, "?environment=staging&service=web")
    assert 'id="releases-staging"' in body and 'id="releases-production"' not in body
    response = client_for(developer).get("/releases/?service=nonesuch")
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()


def test_the_history_is_capped_with_a_link_to_the_older_releases(production, developer):
    for n in range(5):
        release(production, f"v1.{n}.0", "succeeded")
    shown = sections(developer, cap=2)["production"]
    assert [r.version for r in shown.history] == ["v1.4.0", "v1.3.0"] and shown.more
    older = sections(developer, environment="production", before=shown.history[-1].pk, cap=2)["production"]
    assert [r.version for r in older.history] == ["v1.2.0", "v1.1.0"] and older.more
    assert older.live.version == "v1.4.0"  # the live release does not page
    body = page(developer, f"?environment=production&before={shown.history[-1].pk}")
    assert "v1.2.0" in body and "v1.3.0</a>" not in body and "Newest releases" in body


def test_the_page_reads_a_flat_number_of_queries_however_many_deployments(
    production, staging, release_manager
):
    browser = client_for(release_manager)  # offered rollbacks and new changes too

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert browser.get("/releases/").status_code == 200
        return len(captured)

    def add(start: int, number: int) -> None:
        for n in range(start, start + number):
            environment = production if n % 2 else staging
            state = ("succeeded", "failed", "rolled_back")[n % 3]
            release(
                environment, f"v1.{n}.0", state, live=state != "failed", services=("web", "api")[: 1 + n % 2]
            )

    add(0, 3)
    count()  # warm: the first request of a client loads what later ones reuse
    few = count()
    add(3, 27)
    assert count() == few
    assert browser.get("/releases/").content.decode().count("New change for") > 1


def test_the_api_reads_a_flat_number_of_queries_however_many_deployments(production, developer):
    api = client_for(developer)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/api/v1/environments/production/releases/").status_code == 200
        return len(captured)

    for n in range(3):
        release(production, f"v1.{n}.0", "succeeded")
    count()  # warm
    few = count()
    for n in range(3, 30):
        release(production, f"v1.{n}.0", "succeeded", services=("web", "api"))
    assert count() == few


# Rolling back to the release before the live one.


def rollback_offered(body: str) -> bool:
    return "Roll back to this release" in body


def test_roll_back_to_this_release_is_offered_on_the_one_before_the_live_one_to_those_with_the_right(
    production, release_manager, developer, sre
):
    release(production, "v1.0.0", "succeeded")
    live = release(production, "v1.1.0", "succeeded")
    body = page(release_manager)
    assert rollback_offered(body) and f'action="/releases/{live.pk}/rollback/"' in body
    assert "Roll back to v1.0.0" in body and "New change for v1.0.0" not in body
    # A developer may not roll back: they may file a change for the older version instead.
    body = page(developer)
    assert not rollback_offered(body) and "New change for v1.0.0" in body
    # An SRE rolls back only a release that fixes an incident.
    assert not rollback_offered(page(sre))
    ChangeRequest.objects.filter(pk=live.change_id).update(incident=IncidentFactory())
    assert rollback_offered(page(sre))


def test_it_is_offered_while_a_release_is_monitored_too(production, release_manager):
    release(production, "v1.0.0", "succeeded")
    release(production, "v1.1.0", "monitoring")
    assert rollback_offered(page(release_manager))


def test_it_is_not_offered_once_the_old_colour_is_not_kept(production, release_manager):
    release(production, "v1.0.0", "succeeded")
    release(production, "v1.1.0", "succeeded")
    release(production, "v1.2.0", "failed", live=False)  # deployed over v1.0.0's colour
    body = page(release_manager)
    assert not rollback_offered(body) and "New change for v1.0.0" in body
    assert not sections(release_manager)["production"].old_colour_kept


def test_it_is_not_offered_when_the_live_colour_moved_away(production, release_manager):
    release(production, "v1.0.0", "succeeded")
    live = release(production, "v1.1.0", "succeeded")
    DeploySettings.objects.filter(environment=production).update(live_colour=live.from_colour)
    assert not rollback_offered(page(release_manager))


def test_older_releases_are_brought_back_by_a_new_change(production, release_manager):
    release(production, "v1.0.0", "succeeded", services=("web", "api"))
    release(production, "v1.1.0", "succeeded")
    release(production, "v1.2.0", "succeeded")
    body = page(release_manager)
    assert rollback_offered(body)  # to v1.1.0
    assert "New change for v1.0.0" in body and "New change for v1.1.0" not in body


def post_rollback(user, live, *, browser=None, **form):
    fields = {"rollback-reason": "Checkout is slow", "rollback-otp": otp_code(totp_device(user)), **form}
    browser = browser or client_for(user)
    return browser.post(f"/releases/{live.pk}/rollback/", {k: v for k, v in fields.items() if v})


def test_rolling_back_from_the_page_goes_through_the_service_and_is_audited(production, release_manager):
    release(production, "v1.0.0", "succeeded")
    live = release(production, "v1.1.0", "succeeded")
    browser = client_for(release_manager)
    response = post_rollback(release_manager, live, browser=browser)
    assert response.status_code == 302 and response["Location"] == f"/deployments/{live.pk}/"
    live.refresh_from_db()
    assert live.state == "rolling_back" and live.rollback_requested and live.rollback_by == release_manager
    assert live.rollback_reason == "Checkout is slow"
    event = AuditEvent.objects.get(action="deployment.rollback", object_id=str(live.pk))
    assert event.actor_id == release_manager.pk
    assert "Rolling Production back to v1.0.0" in browser.get(response["Location"]).content.decode()


def test_rolling_back_a_monitored_release_asks_the_engine_to(production, release_manager):
    release(production, "v1.0.0", "succeeded")
    live = release(production, "v1.1.0", "monitoring")
    assert post_rollback(release_manager, live).status_code == 302
    live.refresh_from_db()
    assert live.rollback_requested and live.rollback_reason == "Checkout is slow"
    assert AuditEvent.objects.filter(action="deployment.rollback", object_id=str(live.pk)).exists()


@pytest.mark.parametrize(
    ("form", "field", "says"),
    [
        ({"rollback-otp": ""}, "otp", "This field is required."),
        ({"rollback-reason": ""}, "reason", "This field is required."),
        ({"rollback-otp": "000000"}, "otp", "not valid"),
    ],
)
def test_rolling_back_without_a_code_or_a_reason_is_refused_in_words(
    production, release_manager, form, field, says
):
    release(production, "v1.0.0", "succeeded")
    live = release(production, "v1.1.0", "succeeded")
    response = post_rollback(release_manager, live, **form)
    body = response.content.decode()
    assert response.status_code == 400 and says in body
    (section,) = response.context["sections"]
    assert says in " ".join(section.rollback_form.errors[field])  # beside the field it is about
    assert '<details class="release-action" open>' in body  # the refused form shows, open
    live.refresh_from_db()
    assert live.state == "succeeded" and not live.rollback_requested
    assert not AuditEvent.objects.filter(action="deployment.rollback").exists()


def test_rolling_back_is_refused_to_those_without_the_right(production, developer):
    release(production, "v1.0.0", "succeeded")
    live = release(production, "v1.1.0", "succeeded")
    assert post_rollback(developer, live).status_code == 403
    live.refresh_from_db()
    assert live.state == "succeeded"


def test_rolling_back_a_release_that_is_no_longer_live_changes_nothing(production, release_manager):
    release(production, "v1.0.0", "succeeded")
    superseded = release(production, "v1.1.0", "succeeded")
    release(production, "v1.2.0", "succeeded")
    browser = client_for(release_manager)
    response = post_rollback(release_manager, superseded, browser=browser)
    assert response.status_code == 302 and response["Location"] == "/releases/?environment=production"
    assert (
        "Nothing was rolled back: v1.1.0 is no longer the live release"
        in browser.get(response["Location"]).content.decode()
    )
    assert not Deployment.objects.filter(state="rolling_back").exists()


# A new change for an older version.


def test_the_new_change_link_fills_in_the_change_form(production, developer):
    old = release(production, "v1.0.0", "succeeded", services=("web", "api"))
    release(production, "v1.1.0", "succeeded")
    release(production, "v1.2.0", "succeeded")
    row = next(r for r in sections(developer)["production"].history if r.pk == old.pk)
    from deployments.release_views import new_change_url

    link = new_change_url(row)
    assert link.replace("&", "&amp;") in page(developer)
    query = parse_qs(urlsplit(link).query)
    assert query["title"] == ["Roll api, web back to v1.0.0"] and "build" not in query
    form = client_for(developer).get(link).context["form"]
    assert form.initial["title"] == "Roll api, web back to v1.0.0"
    assert form.initial["environment"] == production.pk
    assert sorted(form.initial["services"]) == sorted(s.pk for s in Service.objects.all())
    assert old.change.number in form.initial["description"]


# The API.


def test_the_api_says_what_is_live_and_pages_the_history(production, developer):
    first = release(production, "v1.0.0", "succeeded", services=("web", "api"))
    release(production, "v1.1.0", "rolled_back", rollback_by=developer, rollback_reason="Errors")
    live = release(production, "v1.1.1", "monitoring")
    api = client_for(developer)
    body = api.get("/api/v1/environments/production/releases/?page_size=2").json()
    assert body["environment"] == "production"
    assert body["live"]["deployment"] == live.pk and body["live"]["version"] == "v1.1.1"
    assert body["live"]["colour"] == live.to_colour and body["live"]["monitoring"] is True
    assert body["live"]["since"] and body["live"]["change"] == live.change.number
    assert body["live"]["rollback_to"] == {"deployment": first.pk, "version": "v1.0.0"}
    assert [(r["version"], r["outcome"]) for r in body["results"]] == [
        ("v1.1.1", "monitoring"),
        ("v1.1.0", "rolled_back"),
    ]
    assert (
        body["results"][1]["rollback_reason"] == "Errors"
        and body["results"][1]["rollback_by"] == developer.username
    )
    rest = api.get(body["next"]).json()
    assert [(r["version"], r["outcome"], r["services"]) for r in rest["results"]] == [
        ("v1.0.0", "superseded", ["api", "web"])
    ]
    only_api = api.get("/api/v1/environments/production/releases/?service=api").json()
    assert [r["version"] for r in only_api["results"]] == ["v1.0.0"]


def test_the_api_answers_an_empty_environment_an_unknown_one_and_bad_filters(production, developer):
    api = client_for(developer)
    empty = api.get("/api/v1/environments/staging/releases/").json()
    assert empty["live"] is None and empty["results"] == []
    unknown = api.get("/api/v1/environments/nowhere/releases/")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "There is no environment named nowhere.", "code": "not_found"}
    bad = api.get("/api/v1/environments/production/releases/?service=nonesuch")
    assert bad.status_code == 400 and "service" in bad.json()["detail"]


def test_the_api_and_the_page_need_a_signed_in_reader(production, client):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/environments/production/releases/").status_code in (401, 403)
    assert client.get("/releases/").status_code == 302  # to the sign-in page


# Where the page is linked from.


def test_the_nav_and_each_environment_link_to_the_releases(production, developer, client):
    verified_login(client, developer)
    assert 'href="/releases/"' in client.get("/").content.decode()
    assert 'href="/releases/?environment=production"' in client.get("/environments/").content.decode()
