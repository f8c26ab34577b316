"""Deploy, follow and steer a deployment through the API: refused with every reason when the
change is not ready; one deployment per environment however many ask at once; pause, resume,
promote and a one-click rollback, during the deployment and after it while the old colour is kept."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from deployments import engine, services
from deployments.models import Deployment
from portal import clock
from portal.models import AuditEvent
from tests.conftest import client_for
from tests.deployments.conftest import listener_weights, publish
from tests.deployments.test_engine import run
from tests.factories import otp_code, totp_device

pytestmark = pytest.mark.django_db


def post(user, path: str, **body):
    return client_for(user).post(path, {"otp": otp_code(totp_device(user)), **body}, format="json")


def test_a_change_that_is_not_ready_is_refused_with_every_reason(production, developer, rita):
    from tests.factories import approved_change

    change = approved_change(developer, production, title="Not scheduled")
    response = post(rita, f"/api/v1/changes/{change.pk}/deploy/")
    assert response.status_code == 409
    reasons = response.json()["reasons"]
    assert f"{change.number} is approved: only a scheduled change deploys." in reasons
    assert "When: Not scheduled: schedule it into a deployment window." in reasons
    assert any(r.startswith("Staging soak: ") and "has not reached staging yet" in r for r in reasons)
    assert not Deployment.objects.exists()
    change.refresh_from_db()
    assert change.status == "approved"


def test_deploying_needs_the_right_and_a_fresh_code(ready, developer, rita):
    assert post(developer, f"/api/v1/changes/{ready.pk}/deploy/").status_code == 403
    response = client_for(rita).post(f"/api/v1/changes/{ready.pk}/deploy/", {}, format="json")
    assert response.status_code == 403 and "otp" in response.json()["detail"]
    assert not Deployment.objects.exists()


def test_deploy_answers_202_with_the_deployment_the_api_follows(ready, rita, alb):
    response = post(rita, f"/api/v1/changes/{ready.pk}/deploy/")
    assert response.status_code == 202
    body = response.json()
    assert (body["change"], body["environment"], body["state"]) == (ready.number, "production", "preflight")
    assert body["weights"] == {"green": 0, "blue": 100} and body["plan"] == [25, 50, 100]
    ready.refresh_from_db()
    assert ready.status == "deploying"

    run(Deployment.objects.get(pk=body["id"]), until=lambda d: d.applied_weight == 25, alb=alb)
    followed = client_for(rita).get(f"/api/v1/deployments/{body['id']}/").json()
    assert followed["state"] == "shifting" and followed["weights"] == {"green": 25, "blue": 75}
    assert [s["name"] for s in followed["stages"]][-1] == "25 % on green"
    smoke = next(s for s in followed["stages"] if s["kind"] == "smoke")
    assert smoke["checks"][0]["name"] == "GET /healthz" and smoke["checks"][0]["value"] == 200

    again = post(rita, f"/api/v1/changes/{ready.pk}/deploy/")
    assert again.status_code == 409 and "is deploying" in again.json()["detail"]
    listed = client_for(rita).get("/api/v1/deployments/?environment=production&active=true").json()
    assert [d["id"] for d in listed["results"]] == [body["id"]]


@pytest.mark.django_db(transaction=True)
def test_twenty_deploys_at_once_make_one_deployment(ready, rita):
    barrier, outcomes = threading.Barrier(20), []

    def deploy():
        try:
            barrier.wait()
            outcomes.append(services.deploy(actor=rita, change=ready).pk)
        except services.DeployRefused as refused:
            outcomes.append(refused.reasons[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=deploy) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Deployment.objects.count() == 1 and len(outcomes) == 20
    assert [o for o in outcomes if isinstance(o, int)] == [Deployment.objects.get().pk]
    assert all("is deploying" in o for o in outcomes if isinstance(o, str))
    assert AuditEvent.objects.filter(action="deployment.start").count() == 1


def test_the_database_refuses_a_second_running_deployment_in_an_environment(ready, rita):
    from django.db import IntegrityError, transaction

    first = services.deploy(actor=rita, change=ready)
    with pytest.raises(IntegrityError), transaction.atomic():
        Deployment.objects.create(
            change=ready,
            environment=first.environment,
            created_at=clock.now(),
            from_colour="blue",
            to_colour="green",
            plan=[100],
            bake_seconds=1,
            analysis_seconds=1,
            state_since=clock.now(),
            next_run_at=clock.now(),
        )
    first.ended_at = clock.now()
    first.save(update_fields=["ended_at"])
    Deployment.objects.create(
        change=ready,
        environment=first.environment,
        created_at=clock.now(),
        from_colour="blue",
        to_colour="green",
        plan=[100],
        bake_seconds=1,
        analysis_seconds=1,
        state_since=clock.now(),
        next_run_at=clock.now(),
    )  # once the first ended, the next may run


def test_pause_holds_the_weights_and_resume_goes_on(ready, rita, alb):
    deployment = services.deploy(actor=rita, change=ready)
    deployment = run(deployment, until=lambda d: d.applied_weight == 25, alb=alb)
    assert post(rita, f"/api/v1/deployments/{deployment.pk}/pause/").json()["paused"] is True
    assert post(rita, f"/api/v1/deployments/{deployment.pk}/pause/").status_code == 409
    clock.shift(timedelta(minutes=30))
    assert engine.advance(deployment.pk) is None  # held
    assert listener_weights(alb) == {"green": 25, "blue": 75}
    publish(alb, "green", requests=400, at=clock.now() - timedelta(minutes=5))  # traffic went on meanwhile
    assert post(rita, f"/api/v1/deployments/{deployment.pk}/resume/").json()["paused"] is False
    assert engine.advance(deployment.pk) <= deployment.analysis_seconds  # resume goes on now, not in an hour
    deployment = run(deployment, alb=alb)
    assert deployment.state == Deployment.State.SUCCEEDED
    actions = list(
        AuditEvent.objects.filter(
            object_id=str(deployment.pk), action__in=["deployment.pause", "deployment.resume"]
        )
        .order_by("pk")
        .values_list("action", "actor_id")
    )
    assert actions == [("deployment.pause", rita.pk), ("deployment.resume", rita.pk)]


def test_promote_skips_the_rest_of_the_bake(ready, rita, alb):
    deployment = services.deploy(actor=rita, change=ready)
    deployment = run(deployment, until=lambda d: d.applied_weight == 25, alb=alb)
    clock.shift(timedelta(seconds=70))
    publish(alb, "green", requests=400, at=clock.now() - timedelta(seconds=65))
    assert post(rita, f"/api/v1/deployments/{deployment.pk}/promote/").status_code == 200
    engine.advance(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.applied_weight == 50  # after about a minute of a five-minute bake
    step = deployment.stages.get(weight=25)
    assert step.state == "passed" and step.message == "promoted"
    assert (step.ended_at - step.started_at) < timedelta(minutes=5)


def test_a_manual_rollback_sends_traffic_back_in_one_click(ready, rita, alb):
    deployment = services.deploy(actor=rita, change=ready)
    deployment = run(deployment, until=lambda d: d.applied_weight == 50, alb=alb)
    refused = post(rita, f"/api/v1/deployments/{deployment.pk}/rollback/", reason="")
    assert refused.status_code == 400
    response = post(
        rita,
        f"/api/v1/deployments/{deployment.pk}/rollback/",
        reason="Checkout is slow for VIPs",
        revert=True,
    )
    assert response.status_code == 200
    again = post(rita, f"/api/v1/deployments/{deployment.pk}/rollback/", reason="Twice")
    assert again.status_code == 409 and "rolling back already" in again.json()["detail"]
    deployment = run(deployment, alb=alb)
    revert = [c for c in deployment.stages.get(kind="rollback").checks if c["name"] == "Code revert"]
    assert revert and revert[0]["ok"] is True  # the code revert came with it
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert deployment.rollback_reason == "Checkout is slow for VIPs"
    assert listener_weights(alb) == {"green": 0, "blue": 100}
    ready.refresh_from_db()
    assert ready.status == "rolled_back"
    event = AuditEvent.objects.get(object_id=str(deployment.pk), action="deployment.rollback")
    assert event.actor_id == rita.pk


def test_after_it_went_live_a_rollback_brings_the_old_colour_back_while_it_is_kept(ready, rita, alb, repo):
    deployment = run(services.deploy(actor=rita, change=ready), alb=alb)
    assert deployment.state == "succeeded" and listener_weights(alb) == {"green": 100, "blue": 0}
    response = post(
        rita, f"/api/v1/deployments/{deployment.pk}/rollback/", reason="Errors after go-live", revert=True
    )
    assert response.status_code == 200 and response.json()["state"] == "rolling_back"
    deployment = run(deployment, alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert listener_weights(alb) == {"green": 0, "blue": 100}
    assert deployment.environment.deploy_settings.live_colour == "blue"
    revert = [c for c in deployment.stages.last().checks if c["name"] == "Code revert"]
    assert revert and revert[0]["ok"] is True  # the code revert was made with it
    again = post(rita, f"/api/v1/deployments/{deployment.pk}/rollback/", reason="Again")
    assert again.status_code == 409 and "not the live release" in again.json()["detail"]


def test_deploy_settings_are_read_by_those_who_may_and_set_by_policy_admins(
    production, policy_admin, rita, developer
):
    path = "/api/v1/environments/production/deploy-settings/"
    assert client_for(developer).get(path).status_code == 403
    current = client_for(rita).get(path).json()
    assert current["weights"] == [25, 50, 100] and current["max_error_rate"] == 0.001
    bad = client_for(policy_admin).put(
        path, {**current, "weights": [50, 25], "otp": otp_code(totp_device(policy_admin))}, format="json"
    )
    assert bad.status_code == 400 and "rising percentages" in bad.json()["detail"]
    # A canary strategy was offered once and never carried out: it is not offered any more.
    canary = client_for(policy_admin).put(
        path, {**current, "strategy": "canary", "otp": otp_code(totp_device(policy_admin))}, format="json"
    )
    assert canary.status_code == 400 and "strategy" in canary.json()["detail"]
    good = client_for(policy_admin).put(
        path,
        {
            **current,
            "weights": [5, 20, 100],
            "bake_seconds": 120,
            "otp": otp_code(totp_device(policy_admin)),
        },
        format="json",
    )
    assert good.status_code == 200 and good.json()["weights"] == [5, 20, 100]
    assert (
        AuditEvent.objects.filter(action="environment.deploy_settings", actor_id=policy_admin.pk).count() == 1
    )


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"analysis_seconds": 5, "telemetry": "cloudwatch"}, "judge a step every 60 s or more"),
        ({"max_error_rate": -1}, "greater than or equal to 0"),
        ({"smoke_checks": []}, "Each smoke check is"),
        ({"smoke_checks": [{"path": "/healthz", "status": True}]}, "Each smoke check is"),
        ({"weights": [25, 50]}, "ending at 100"),
        ({"deployer": "github_actions", "github_workflow": ""}, "needs the workflow to run, e.g. deploy.yml"),
        (
            {"github_workflow": "../deploy.yml"},
            "github_workflow: '../deploy.yml' is not a workflow: give its",
        ),
        (
            {"github_workflow_ref": "release 1"},
            "github_workflow_ref: 'release 1' is not a branch or tag name.",
        ),
        ({"github_workflow_ref": "main..x"}, "is not a branch or tag name"),
        ({"verify_seconds": -60}, "verify_seconds: Ensure this value is greater than or equal to 0."),
        ({"monitor_seconds": "an hour"}, "monitor_seconds: A valid integer is required."),
        (
            {"monitor_interval_seconds": 0},
            "monitor_interval_seconds: Ensure this value is greater than or equal to 1.",
        ),
    ],
)
def test_deploy_settings_that_cannot_work_are_refused_in_words(production, policy_admin, change, says):
    path = "/api/v1/environments/production/deploy-settings/"
    current = client_for(policy_admin).get(path).json()
    response = client_for(policy_admin).put(
        path, {**current, **change, "otp": otp_code(totp_device(policy_admin))}, format="json"
    )
    assert response.status_code == 400 and says in response.json()["detail"]
    assert client_for(policy_admin).get(path).json() == current


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"deployer": "simulated"}, "The simulated deployer is the demo's (DEMO=true)"),
        (
            {
                "deployer": "webhook",
                "deployer_url": "https://93.184.216.34/hook",
                "telemetry": "simulated",
            },
            "The simulated telemetry is the demo's (DEMO=true)",
        ),
    ],
)
def test_outside_the_demo_the_simulated_production_is_refused(
    production, policy_admin, settings, change, says
):
    path = "/api/v1/environments/production/deploy-settings/"
    current = client_for(policy_admin).get(path).json()
    settings.DEMO = False
    response = client_for(policy_admin).put(
        path, {**current, **change, "otp": otp_code(totp_device(policy_admin))}, format="json"
    )
    assert response.status_code == 400 and says in response.json()["detail"], response.json()
    assert client_for(policy_admin).get(path).json() == current


def test_the_github_actions_deployer_and_the_monitoring_are_set_through_the_api(production, policy_admin):
    path = "/api/v1/environments/production/deploy-settings/"
    current = client_for(policy_admin).get(path).json()
    shown = {name: current[name] for name in ("github_workflow", "github_workflow_ref", "verify_seconds")}
    assert shown == {"github_workflow": "", "github_workflow_ref": "", "verify_seconds": 900}
    assert (current["monitor_seconds"], current["monitor_interval_seconds"]) == (3600, 300)
    wanted = {
        "deployer": "github_actions",
        "github_workflow": "deploy.yml",
        "github_workflow_ref": "release/2026",
        "verify_seconds": 600,
        "monitor_seconds": 7200,
        "monitor_interval_seconds": 120,
    }
    response = client_for(policy_admin).put(
        path, {**current, **wanted, "otp": otp_code(totp_device(policy_admin))}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert client_for(policy_admin).get(path).json() == {**current, **wanted}
    event = AuditEvent.objects.get(action="environment.deploy_settings", actor_id=policy_admin.pk)
    assert (event.before["github_workflow"], event.after["github_workflow"]) == ("", "deploy.yml")


def test_steering_and_rolling_back_need_their_rights_and_a_code(ready, rita, developer, sre, alb):
    from tests.factories import IncidentFactory

    deployment = run(
        services.deploy(actor=rita, change=ready), until=lambda d: d.applied_weight == 25, alb=alb
    )
    for action in ("pause", "resume", "promote"):
        assert post(developer, f"/api/v1/deployments/{deployment.pk}/{action}/").status_code == 403
    assert post(developer, f"/api/v1/deployments/{deployment.pk}/rollback/", reason="Mine").status_code == 403
    # An SRE rolls back only a change that fixes an incident.
    refused = post(sre, f"/api/v1/deployments/{deployment.pk}/rollback/", reason="Looks bad")
    assert refused.status_code == 403 and "roll back any deployment" in refused.json()["detail"]
    no_code = client_for(rita).post(f"/api/v1/deployments/{deployment.pk}/pause/", {}, format="json")
    assert no_code.status_code == 403 and "otp" in no_code.json()["detail"]
    deployment.refresh_from_db()
    assert deployment.paused_at is None and not deployment.rollback_requested

    ready.incident = IncidentFactory()
    ready.save(update_fields=["incident"])
    assert post(sre, f"/api/v1/deployments/{deployment.pk}/rollback/", reason="INC paging").status_code == 200
    deployment.refresh_from_db()
    assert deployment.rollback_requested and deployment.rollback_by_id == sre.pk


def test_the_page_controls_refuse_a_wrong_code_and_an_unknown_control(ready, rita, alb):
    deployment = run(
        services.deploy(actor=rita, change=ready), until=lambda d: d.applied_weight == 25, alb=alb
    )
    browser = client_for(rita)
    wrong = f"{(int(otp_code(totp_device(rita))) + 1) % 1_000_000:06d}"
    response = browser.post(f"/deployments/{deployment.pk}/pause/", {"otp": wrong})
    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert browser.post(f"/deployments/{deployment.pk}/explode/", {"otp": wrong}).status_code == 403
    rollback = browser.post(
        f"/deployments/{deployment.pk}/rollback/", {"rollback-otp": otp_code(totp_device(rita))}
    )
    assert rollback.status_code == 400 and "This field is required" in rollback.content.decode()  # the reason
    deployment.refresh_from_db()
    assert deployment.paused_at is None and not deployment.rollback_requested
