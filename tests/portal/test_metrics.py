"""/metrics, scraped as Prometheus would and read with its text parser: the request and database
series of django-prometheus, and the portal's own, each agreeing with what happened."""

import ipaddress

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deployments import services
from deployments.models import Deployment, Stage
from portal import heartbeat
from portal.models import AuditEvent, Notification
from portal.services import notification_send
from tests.changes.conftest import repo  # noqa: F401 (fixtures)
from tests.deployments.conftest import (  # noqa: F401 (fixtures)
    alb,
    cloudwatch_percentiles,
    colours,
    judged_by,
    production,
    publish,
    ready,
    rita,
)
from tests.deployments.test_engine import run

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-0123456789abcdef0123"


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def value(family, name: str, **labels) -> float:
    found = [
        s.value
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, family.samples)
    return found[0]


def test_metrics_name_requests_queries_deployments_stages_rollbacks_notifications_and_audit(
    client,
    settings,
    alb,  # noqa: F811 (the fixture)
    ready,  # noqa: F811 (the fixture)
    rita,  # noqa: F811 (the fixture)
):
    settings.METRICS_TOKEN = TOKEN
    deployment = services.deploy(actor=rita, change=ready)
    deployment = run(deployment, until=lambda d: d.applied_weight == 25, alb=alb)
    publish(alb, "green", requests=1000, errors=50)
    deployment = run(deployment, alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    notification_send(channel="email", recipient="sre@example.com", subject="s", body="b")
    client.get("/login/")
    heartbeat.stamp(heartbeat.BEAT_KEY)

    families = scrape(client)

    # django-prometheus: requests by method and the database's queries.
    assert (
        value(
            families["django_http_requests_total_by_method"],
            "django_http_requests_total_by_method_total",
            method="GET",
        )
        >= 1
    )
    assert (
        sum(s.value for s in families["django_db_execute"].samples if s.name == "django_db_execute_total") > 0
    )

    deployments = families["greenlight_deployments"]
    assert (
        value(deployments, "greenlight_deployments_total", environment="production", outcome="rolled_back")
        == 1
    )
    assert value(families["greenlight_rollbacks"], "greenlight_rollbacks_total", trigger="automatic") == 1
    assert value(families["greenlight_rollbacks"], "greenlight_rollbacks_total", trigger="manual") == 0

    stages = families["greenlight_stage_duration_seconds"]
    for kind in Stage.objects.filter(ended_at__isnull=False).values_list("kind", flat=True).distinct():
        ended = Stage.objects.filter(kind=kind, ended_at__isnull=False)
        assert value(stages, "greenlight_stage_duration_seconds_count", kind=kind) == ended.count()
        seconds = sum((s.ended_at - s.started_at).total_seconds() for s in ended)
        assert value(stages, "greenlight_stage_duration_seconds_sum", kind=kind) == pytest.approx(seconds)
    # A bake of the test policy's 60 s lands in the 60 s bucket, not the 30 s one.
    baked = Stage.objects.get(deployment=deployment, weight=25)
    assert (baked.ended_at - baked.started_at).total_seconds() > 30
    shift_kind = baked.kind
    assert value(stages, "greenlight_stage_duration_seconds_bucket", kind=shift_kind, le="30.0") < value(
        stages, "greenlight_stage_duration_seconds_bucket", kind=shift_kind, le="+Inf"
    )

    by_status = {
        (s.labels["channel"], s.labels["status"]): s.value
        for s in families["greenlight_notifications"].samples
        if s.name == "greenlight_notifications_total"
    }
    expected = {}
    for row in Notification.objects.values_list("channel", "status"):
        expected[row] = expected.get(row, 0) + 1
    assert by_status == expected and ("email", "pending") in by_status

    assert (
        value(families["greenlight_audit_events"], "greenlight_audit_events_total")
        == AuditEvent.objects.count()
    )
    assert value(families["greenlight_process_up"], "greenlight_process_up", process="beat") == 1


def test_metrics_are_refused_in_words_without_the_token_or_an_allowed_network(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_NETWORKS = TOKEN, []
    refused = client.get("/metrics")
    assert refused.status_code == 403
    assert "bearer token (METRICS_TOKEN) or a client in METRICS_NETWORKS" in refused.content.decode()
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 403
    # Prometheus scrapes by address: no ALLOWED_HOSTS refusal first.
    assert (
        client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_HOST="10.0.0.7:8000").status_code
        == 200
    )

    settings.METRICS_NETWORKS = [ipaddress.ip_network("10.20.0.0/16")]
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.21.3.4").status_code == 403
