import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import override_settings

from portal import clock, heartbeat
from portal.tasks import beat_heartbeat
from tests.conftest import ROOT


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_checks_answer_a_caller_that_uses_the_ip_address(client):
    """Load balancers and container checks call by address, which ALLOWED_HOSTS does not list."""
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400


@pytest.mark.django_db(databases="__all__")
def test_readyz_is_ready_when_database_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {
        "database:default": {"ok": True},
        "database:replica": {"ok": True},
        "broker": {"ok": True},
    }


@pytest.mark.django_db(databases="__all__")
def test_readyz_shows_when_each_queue_was_read_and_beat_seen_and_which_is_silent(client):
    beat = beat_heartbeat()
    read = heartbeat.stamp_queues(
        ["celery", "celery.deployments", "celery.rollbacks", "celery.notifications"]
    )
    assert client.get("/readyz").json()["processes"] == {
        "celery": {"last_seen": read, "silent": False},
        "celery.deployments": {"last_seen": read, "silent": False},
        "celery.rollbacks": {"last_seen": read, "silent": False},
        "celery.notifications": {"last_seen": read, "silent": False},
        "beat": {"last_seen": beat, "silent": False},
    }
    # The rollbacks' worker last read two minutes ago: it is named, the verdict stays ready.
    cache.set(heartbeat.queue_key("celery.rollbacks"), (clock.now() - timedelta(minutes=2)).isoformat())
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert [name for name, seen in body["processes"].items() if seen["silent"]] == ["celery.rollbacks"]


@pytest.mark.django_db(databases="__all__")
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_readyz_is_503_naming_an_unreachable_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"].startswith("unreachable (")
    assert "127.0.0.1" not in response.content.decode()
    assert body["checks"]["database:default"] == {"ok": True}


def test_readyz_is_503_naming_an_unreachable_database(tmp_path):
    """A fresh process whose DATABASE_URL points at a port where nothing listens."""
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='localhost').get('/readyz');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": "postgres://greenlight:x@127.0.0.1:1/nowhere",
        "GREENLIGHT_VAR_DIR": str(tmp_path),
    }
    env.pop("DATABASE_REPLICA_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503
    assert answer["body"]["checks"]["database:default"]["ok"] is False
    # Which dependency, but not where it lives: hosts and ports stay in the log.
    assert answer["body"]["checks"]["database:default"]["error"] == "unreachable (OperationalError)"
    assert answer["body"]["checks"]["broker"] == {"ok": True}


@pytest.mark.django_db(databases="__all__")
def test_readyz_keeps_its_answer_a_few_seconds_for_anonymous_callers(client, settings):
    """security L5: each anonymous call opened new database and broker connections."""
    from portal.views.health import readiness_forget

    readiness_forget()
    stranger = {"REMOTE_ADDR": "203.0.113.9"}
    first = client.get("/readyz", **stranger)
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    again = client.get("/readyz", **stranger)
    monitor = client.get("/readyz")  # loopback: in the demo's METRICS_NETWORKS, probes afresh
    after_monitor = client.get("/readyz", **stranger)

    assert (first.status_code, again.status_code) == (200, 200)
    assert monitor.status_code == 503
    assert after_monitor.status_code == 503
    readiness_forget()
