"""After 100 %: the immediate verification (a failure rolls back by itself), the short-term
monitoring (a regression alerts the release manager and the stakeholders and offers a rollback;
nothing completes by itself after it), a change completing by itself with its During and After
items proved and its report kept, and a release manager ending the monitoring early."""

from datetime import timedelta

import pytest

from deployments import engine, services
from deployments.models import Deployment, Stage
from deployments.tasks import deployments_reconcile
from portal import clock
from portal.models import AuditEvent, Notification
from tests.conftest import client_for
from tests.deployments.conftest import listener_weights
from tests.deployments.test_engine import run
from tests.factories import UserFactory, otp_code, totp_device

pytestmark = pytest.mark.django_db


def item(key: str, text: str, phase: str, integration: str = "") -> dict:
    return {"key": key, "text": text, "phases": [phase], "integration": integration}


CHECKLIST = [
    {
        "key": "backup",
        "text": "Database backup completed",
        "phases": ["pre", "before"],
        "integration": "backup",
    },
    item("blue_healthy", "Blue environment health verified", "during", "deployment"),
    item("smoke_tests", "Smoke tests passed", "during", "deployment"),
    item("traffic_shift", "Gradual traffic shift", "during", "deployment"),
    item("metrics_in_range", "Metrics within acceptable ranges", "during", "deployment"),
    item("full_smoke_suite", "Full smoke test suite passed", "after", "post_deployment"),
    item("performance_baseline", "Performance metrics baseline met", "after", "post_deployment"),
    item("error_rates_normal", "Error rates within normal range", "after", "post_deployment"),
    item("user_feedback", "User feedback monitored", "after"),
    item("post_deployment_report", "Post-deployment report completed", "after", "post_deployment"),
]


@pytest.fixture
def watched(production):
    """Production's policy with the process's During and After items (before the change is made),
    15 minutes of verification and an hour of monitoring checked every 5 minutes."""
    policy = production.approval_policy
    policy.checklist = CHECKLIST
    policy.save(update_fields=["checklist"])
    production.deploy_settings.__class__.objects.filter(environment=production).update(
        verify_seconds=900, monitor_seconds=3600, monitor_interval_seconds=300
    )
    return production


@pytest.fixture
def stakeholder(ready):
    person = UserFactory(username="stella", email="stella@example.com")
    ready.stakeholders.add(person)
    ready.stakeholder_channels = ["#releases"]
    ready.save(update_fields=["stakeholder_channels"])
    return person


def live(deployment, alb):
    """Runs the deployment until all traffic is on the new colour."""
    return run(deployment, until=lambda d: d.state == Deployment.State.MONITORING, alb=alb)


def test_monitoring_completes_the_change_with_its_items_proved_and_a_report(watched, ready, rita, alb):
    deployment = live(services.deploy(actor=rita, change=ready), alb)
    assert listener_weights(alb) == {"green": 100, "blue": 0}
    assert deployment.live_at is not None and deployment.ended_at is None
    assert deployment.monitor_until == deployment.live_at + timedelta(seconds=900 + 3600)
    ready.refresh_from_db()
    assert ready.status == "verifying"
    during = {i.key: i for i in ready.checklist.filter(phases__contains=["during"])}
    assert all(item.done for item in during.values()), {k: i.evidence for k, i in during.items()}
    assert during["traffic_shift"].evidence.startswith("25 % → 50 % → 100 % on green")
    assert "blue" in during["blue_healthy"].evidence and "2/2" in during["blue_healthy"].evidence
    # The environment stays locked while the release is watched.
    assert Deployment.running_in(watched.pk).pk == deployment.pk
    assert any(
        r.startswith(f"Production is watching {ready.number}'s release until")
        for r in services.deploy_refusals(ready)
    )

    deployment = run(deployment, alb=alb)
    assert deployment.state == Deployment.State.SUCCEEDED and deployment.error == ""
    assert deployment.ended_at >= deployment.monitor_until
    assert Deployment.running_in(watched.pk) is None  # unlocked
    ready.refresh_from_db()
    assert ready.status == "completed"
    verify = deployment.stages.get(kind=Stage.Kind.VERIFY)
    monitor = deployment.stages.get(kind=Stage.Kind.MONITOR)
    assert verify.state == monitor.state == Stage.State.PASSED
    rounds = {c["at"] for c in monitor.checks}
    assert len(rounds) == 12  # every 5 minutes for an hour
    after = {i.key: i for i in ready.checklist.filter(phases__contains=["after"])}
    assert after["full_smoke_suite"].done and "GET /healthz" in after["full_smoke_suite"].evidence
    assert (
        after["performance_baseline"].done
        and "Latency p95 120.0 (limit 500)" in after["performance_baseline"].evidence
    )
    assert (
        after["error_rates_normal"].done
        and "5xx error rate 0.0 (limit 0.001)" in after["error_rates_normal"].evidence
    )
    assert after["post_deployment_report"].evidence == f"Post-deployment report of deployment {deployment.pk}"
    assert not after["user_feedback"].done  # a person's item, no evidence to prove it

    report = deployment.report
    assert report["version"] == "v1.3.0" and report["change"]["number"] == ready.number
    assert [s["name"] for s in report["stages"]][-2:] == [verify.name, monitor.name]
    step = next(s for s in report["stages"] if s["name"] == "25 % on green")
    rate = next(g for g in step["gates"] if g["name"] == "5xx error rate")
    assert rate["value"] == 0.0 and rate["threshold"] == 0.001 and step["seconds"] >= 300
    assert {"text": "User feedback monitored", "done": False, "evidence": ""} in report["after"]
    page = client_for(rita).get(f"/deployments/{deployment.pk}/report/")
    assert page.status_code == 200
    assert "Post-deployment report: v1.3.0 to" in page.content.decode()
    assert "Performance metrics baseline met" in page.content.decode()
    for linked_from in (f"/deployments/{deployment.pk}/", f"/changes/{ready.pk}/"):
        linked = client_for(rita).get(linked_from).content.decode()
        assert f'href="/deployments/{deployment.pk}/report/"' in linked


def test_a_failure_in_the_immediate_verification_rolls_back_by_itself(watched, ready, rita, alb):
    deployment = live(services.deploy(actor=rita, change=ready), alb)
    deployment = run(deployment, alb=alb, errors=40)  # 10 % of requests fail
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert deployment.error.startswith("Rolled back: Immediate verification at 100 %: 5xx error rate")
    assert listener_weights(alb) == {"green": 0, "blue": 100}
    assert deployment.environment.deploy_settings.live_colour == "blue"
    assert deployment.stages.get(kind=Stage.Kind.VERIFY).state == Stage.State.FAILED
    ready.refresh_from_db()
    assert ready.status == "rolled_back"


def test_a_regression_while_monitoring_alerts_and_offers_a_rollback(watched, ready, stakeholder, rita, alb):
    deployment = live(services.deploy(actor=rita, change=ready), alb)
    deployment = run(
        deployment, alb=alb, until=lambda d: d.stages.filter(kind=Stage.Kind.MONITOR).exists()
    )  # past the immediate verification
    deployment = run(deployment, alb=alb, errors=40, until=lambda d: d.regressed_at is not None)
    assert deployment.state == Deployment.State.MONITORING  # still live: a person decides
    assert listener_weights(alb) == {"green": 100, "blue": 0}
    assert "5xx error rate" in deployment.regression and deployment.regression.startswith(
        "Regression on green"
    )
    told = Notification.objects.filter(subject__contains="regressed")
    notices = told.count()
    recipients = list(told.values_list("recipient", flat=True))
    assert len(recipients) == len(set(recipients))  # nobody told twice
    recipients = set(recipients)
    assert {"#production-alerts", rita.email, stakeholder.email, "#releases"} <= recipients
    assert all(f"/deployments/{deployment.pk}/" in body for body in told.values_list("body", flat=True))
    assert AuditEvent.objects.filter(action="deployment.regressed", object_id=str(deployment.pk)).count() == 1

    page = client_for(rita).get(f"/deployments/{deployment.pk}/").content.decode()
    assert "Regression at" in page and 'class="rollback"' in page and ">Roll back</button>" in page

    # Past its monitoring time, a regressed release does not complete by itself, and is no longer
    # checked: it waits for a person, looked at again each interval.
    clock.shift(deployment.monitor_until - clock.now() + timedelta(minutes=1))
    rounds = len(deployment.stages.get(kind=Stage.Kind.MONITOR).checks)
    for _ in range(3):
        assert engine.advance(deployment.pk) == 300
        clock.shift(timedelta(minutes=5))
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.MONITORING and deployment.ended_at is None
    assert len(deployment.stages.get(kind=Stage.Kind.MONITOR).checks) == rounds
    assert Notification.objects.filter(subject__contains="regressed").count() == notices  # told once

    response = client_for(rita).post(
        f"/deployments/{deployment.pk}/rollback/",
        {"rollback-reason": "Errors since the release", "rollback-otp": otp_code(totp_device(rita))},
    )
    assert response.status_code == 302
    deployment = run(deployment, alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert listener_weights(alb) == {"green": 0, "blue": 100}
    ready.refresh_from_db()
    assert ready.status == "rolled_back"


def test_a_release_manager_ends_the_monitoring_early_with_a_reason(watched, ready, rita, developer, alb):
    deployment = live(services.deploy(actor=rita, change=ready), alb)
    url = f"/api/v1/deployments/{deployment.pk}/end-monitoring/"
    refused = client_for(rita).post(url, {"otp": otp_code(totp_device(rita)), "reason": ""}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json()["detail"]
    assert client_for(developer).post(url, {"otp": "123456", "reason": "x"}, format="json").status_code == 403
    paused = client_for(rita).post(
        f"/api/v1/deployments/{deployment.pk}/pause/", {"otp": otp_code(totp_device(rita))}, format="json"
    )
    assert paused.status_code == 409 and "live and monitored" in paused.json()["detail"]

    answer = client_for(rita).post(
        url, {"otp": otp_code(totp_device(rita)), "reason": "Launch event needs the slot"}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    clock.shift(timedelta(seconds=15))
    deployments_reconcile()  # what beat does every 15 s
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.SUCCEEDED
    assert deployment.ended_early_by == rita and deployment.report["monitoring"]["ended_early_reason"] == (
        "Launch event needs the slot"
    )
    ready.refresh_from_db()
    assert ready.status == "completed"
    event = AuditEvent.objects.get(action="deployment.end_monitoring", object_id=str(deployment.pk))
    assert event.actor_id == rita.pk and "Launch event" in event.after["ended_early_reason"]
    assert (
        client_for(rita)
        .post(url, {"otp": otp_code(totp_device(rita)), "reason": "again"}, format="json")
        .status_code
        == 409
    )


def test_long_waits_are_left_to_the_beat(watched, ready, rita, alb, settings):
    """A monitored release is looked at by the reconciler when due, not by a message held for
    minutes in the broker."""
    from deployments import tasks

    deployment = live(services.deploy(actor=rita, change=ready), alb)
    sent = []
    original = tasks.deployment_advance.apply_async
    tasks.deployment_advance.apply_async = lambda args, countdown: sent.append(countdown)
    try:
        clock.shift(timedelta(minutes=20))  # past the verification: checks every 5 minutes
        tasks.deployment_advance(deployment.pk)
        deployment.refresh_from_db()
        assert deployment.next_run_at > clock.now() + timedelta(minutes=4)
        assert sent == []

        def rounds():
            return sum(len(s.checks) for s in deployment.stages.all())

        before = rounds()
        clock.shift(timedelta(minutes=5, seconds=10))
        assert deployments_reconcile() == 1
        assert rounds() > before  # a round of the monitoring ran
    finally:
        tasks.deployment_advance.apply_async = original


def test_ending_early_after_a_regression_proves_only_what_the_evidence_shows(watched, ready, rita, alb):
    deployment = live(services.deploy(actor=rita, change=ready), alb)
    deployment = run(deployment, alb=alb, until=lambda d: d.stages.filter(kind=Stage.Kind.MONITOR).exists())
    deployment = run(deployment, alb=alb, errors=40, until=lambda d: d.regressed_at is not None)
    services.deployment_end_monitoring(actor=rita, deployment=deployment, reason="Known flaky endpoint")
    engine.advance(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.SUCCEEDED
    after = {i.key: i for i in ready.checklist.filter(phases__contains=["after"])}
    assert not after["error_rates_normal"].done  # the regression says otherwise: a person decides
    assert after["performance_baseline"].done and after["post_deployment_report"].done
    assert deployment.report["monitoring"]["regression"].startswith("Regression on green")
    monitor = deployment.stages.get(kind=Stage.Kind.MONITOR)
    assert (monitor.state, monitor.message) == (Stage.State.PASSED, "ended early")


def test_a_rollback_asked_for_while_the_monitoring_completes_wins(watched, ready, rita, alb):
    deployment = live(services.deploy(actor=rita, change=ready), alb)
    stale = Deployment.objects.select_related("environment__deploy_settings", "change").get(pk=deployment.pk)
    services.deployment_rollback(actor=rita, deployment=deployment, reason="Support sees errors")
    engine.complete(stale)  # the engine read the row just before the rollback was asked for
    deployment.refresh_from_db()
    assert deployment.ended_at is None and deployment.state == Deployment.State.MONITORING
    deployment = run(deployment, alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert listener_weights(alb) == {"green": 0, "blue": 100}


def test_trouble_watching_a_verified_release_alerts_and_never_rolls_it_back(watched, ready, rita, alb):
    from integrations.aws import AwsError

    deployment = live(services.deploy(actor=rita, change=ready), alb)
    deployment = run(deployment, alb=alb, until=lambda d: d.stages.filter(kind=Stage.Kind.MONITOR).exists())
    world = engine.outside_for(deployment.environment.deploy_settings)

    def throttled(*args, **kwargs):  # CloudWatch refusing, as AWS does under load
        raise AwsError("AWS is busy (Throttling) while trying to read the request counts", transient=True)

    world.telemetry.counts = throttled
    for _ in range(12):
        clock.shift(timedelta(seconds=engine.advance(deployment.pk, outside=world) or 1))
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.MONITORING and deployment.attempts == 12
    assert listener_weights(alb) == {"green": 100, "blue": 0}
    assert Notification.objects.filter(subject__contains="cannot be watched").exists()
    deployment = run(deployment, alb=alb)  # CloudWatch answers again
    assert deployment.state == Deployment.State.SUCCEEDED and deployment.attempts == 0


def test_a_verification_shorter_than_a_judgement_is_refused(production):
    from django.core.exceptions import ValidationError

    settings_ = production.deploy_settings
    settings_.analysis_seconds, settings_.verify_seconds = 60, 30
    with pytest.raises(ValidationError, match="at least one judgement"):
        settings_.full_clean()
    settings_.verify_seconds = 0  # none at all is a choice
    settings_.full_clean()
