"""What needs a real Celery worker process: work enqueued by the web runs in another process."""

import ipaddress
from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from portal import clock, heartbeat
from portal.models import Notification
from portal.services import notification_send
from portal.tasks import beat_heartbeat
from tests.conftest import client_for, start_worker, stop_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_task_enqueued_from_the_web_runs_in_the_worker(celery_worker_process, sre, settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.0/8")]
    response = client_for(sre).post(
        "/api/v1/notifications/test/",
        {"channel": "email", "recipient": "ops@example.com"},
        format="json",
        HTTP_X_REQUEST_ID="web-request-000777",
        REMOTE_ADDR="127.0.0.1",
    )
    assert response.status_code == 202
    assert response.json()["status"] == "pending"

    def delivered():
        notification = Notification.objects.get(pk=response.json()["id"])
        return notification if notification.status != Notification.Status.PENDING else None

    notification = wait_for(delivered)
    # E-mail is not configured in the worker: the message is logged, once.
    assert notification.status == Notification.Status.LOGGED
    assert notification.attempts == 1
    # The worker's log lines carry the id of the web request that enqueued the task.
    log = celery_worker_process.log_path.read_text()
    assert "[web-request-000777]" in log and "would send to ops@example.com" in log


def test_worker_reads_the_shifted_portal_clock(celery_worker_process):
    cache.delete(heartbeat.BEAT_KEY)
    clock.shift(timedelta(days=30))
    beat_heartbeat.delay()
    stamp = datetime.fromisoformat(wait_for(lambda: cache.get(heartbeat.BEAT_KEY)))
    assert abs(stamp - clock.now()) < timedelta(minutes=1)
    assert stamp - timezone.now() > timedelta(days=29)


def test_the_worker_stamps_the_queues_it_reads_without_any_task(celery_worker_process):
    """From a thread of the worker's main process: a queue nobody sends to still shows it alive."""
    key = heartbeat.queue_key("celery.rollbacks")
    cache.delete(key)
    stamp = datetime.fromisoformat(wait_for(lambda: cache.get(key), timeout=heartbeat.EVERY_SECONDS + 5))
    assert abs(stamp - clock.now()) < timedelta(seconds=heartbeat.EVERY_SECONDS + 5)
    assert {p.name for p in heartbeat.processes() if not p.silent} >= set(heartbeat.queues())


def test_the_worker_records_how_long_each_queue_s_tasks_waited(celery_worker_process, settings, client):
    """The wait is kept in Redis by the worker, and /metrics of the web reads it per queue."""
    from prometheus_client.parser import text_string_to_metric_families

    settings.METRICS_TOKEN = "scrape-token-0123456789abcdef0123"

    def waited(queue: str) -> float:
        body = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}").content.decode()
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == "greenlight_task_latency_seconds_count" and sample.labels["queue"] == queue:
                    return sample.value
        return 0

    before = waited("celery.notifications")
    notification = notification_send(channel="email", recipient="ops@example.com", subject="s", body="b")
    wait_for(lambda: Notification.objects.get(pk=notification.pk).status == Notification.Status.LOGGED)
    assert wait_for(lambda: waited("celery.notifications") == before + 1)


def test_the_worker_keeps_its_database_session_from_task_to_task(own_queue, tmp_path):
    """As the web server keeps its connection between requests: one session for every task, not a
    new one each (connecting cost an engine task 8 % of its time, and its prepared statements)."""
    from django.db import connection

    def others() -> set[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return {row[0] for row in cursor.fetchall()}

    worker = start_worker(tmp_path / "worker.log", **own_queue)
    try:
        before = others()
        sessions = []
        for n in range(3):
            sent = notification_send(channel="email", recipient=f"ops{n}@example.com", subject="s", body="b")
            wait_for(lambda pk=sent.pk: Notification.objects.get(pk=pk).status != Notification.Status.PENDING)
            sessions.append(others() - before)
        assert len(sessions[0]) == 1, sessions  # the worker's, kept open after its task
        assert sessions[0] == sessions[1] == sessions[2]
    finally:
        stop_worker(worker)
