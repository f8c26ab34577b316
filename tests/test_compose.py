"""The production shape (docker-compose.yml, Dockerfile) stays valid without a Docker engine."""

import http.client
import os
import re
import socket
import subprocess
import sys
import time

import yaml

from tests.conftest import ROOT

# DESIGN.md's configuration table: what every Greenlight container is configured with.
CONFIGURATION = {
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "TRUSTED_PROXIES",
    "DATABASE_URL",
    "DATABASE_REPLICA_URL",
    "REDIS_URL",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "GITHUB_TOKEN",
    "GITHUB_REPOSITORY",
    "GITHUB_API_URL",
    "GITHUB_WEBHOOK_SECRET",
    "SLACK_BOT_TOKEN",
    "PAGERDUTY_ROUTING_KEY",
    "EMAIL_URL",
}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_services():
    services = compose()["services"]
    assert {"web", "engine", "worker", "beat", "migrate", "db", "redis"} <= set(services)
    assert services["db"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:")
    assert services["web"]["command"][0] == "gunicorn"
    assert services["worker"]["command"][:4] == ["celery", "--app", "config", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "--app", "config", "beat"]


def test_every_queue_is_read_and_rollbacks_share_no_worker_with_notifications():
    from portal.queues import KINDS, queue

    read = {}
    for name, service in compose()["services"].items():
        command = service.get("command") or []
        if command[:4] == ["celery", "--app", "config", "worker"]:
            read[name] = set(command[command.index("--queues") + 1].split(","))
    assert set().union(*read.values()) == {queue(kind) for kind in KINDS}
    for queues in read.values():
        assert not ({"celery.rollbacks"} <= queues and "celery.notifications" in queues)


def test_greenlight_services_are_configured_only_through_the_documented_variables():
    services = compose()["services"]
    for name in ["web", "engine", "worker", "beat", "migrate"]:
        environment = services[name]["environment"]
        assert set(environment) >= CONFIGURATION, name
        assert (
            environment["DATABASE_URL"].startswith("postgres://")
            and "@db:5432/" in environment["DATABASE_URL"]
        )
        assert environment["REDIS_URL"] == "redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD}@redis:6379/0"


def test_the_application_connects_as_a_role_that_owns_no_table():
    """Only migrations run as the tables' owner; web, workers and beat connect as the role that
    database_roles grants what it needs, which cannot TRUNCATE the audit trail or drop its guard."""
    services = compose()["services"]
    for name in ["web", "engine", "worker", "beat"]:
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://greenlight_app:"), name
    migrate = services["migrate"]
    assert migrate["environment"]["DATABASE_URL"].startswith("postgres://greenlight:")
    assert "database_roles --app-role greenlight_app" in " ".join(migrate["command"])
    assert services["db"]["environment"]["POSTGRES_USER"] == "greenlight"


def test_redis_asks_for_a_password():
    redis = compose()["services"]["redis"]
    assert "--requirepass" in " ".join(redis["command"])
    assert "-a" in " ".join(redis["healthcheck"]["test"])


def test_web_worker_and_beat_start_after_migrations_and_web_checks_readiness():
    services = compose()["services"]
    for name in ["web", "engine", "worker", "beat"]:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])


def test_compose_variables_are_all_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "docker-compose.yml").read_text()))
    undocumented = {name for name in used if f"`{name}`" not in readme}
    assert undocumented == set()


def test_dockerfile_installs_the_lock_file_and_runs_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in dockerfile
    assert "USER greenlight" in dockerfile


def test_every_locked_package_carries_its_hash_and_install_requires_them():
    """A substituted package on the index is refused at install (make install, the image)."""
    for lock in ["requirements.lock", "requirements-dev.lock"]:
        pins = re.findall(
            r"^([A-Za-z0-9_.-]+==[^ \\\n]+)(.*?)(?=^[A-Za-z0-9_.-]+==|\Z)",
            (ROOT / lock).read_text(),
            re.M | re.S,
        )
        assert len(pins) > 50, lock
        unhashed = [pin for pin, rest in pins if "--hash=sha256:" not in rest]
        assert unhashed == [], lock
    assert "--require-hashes -r requirements-dev.lock" in (ROOT / "Makefile").read_text()


def test_the_web_server_keeps_an_idle_connection_longer_than_its_default(tmp_path):
    """gunicorn, started as every command starts it (from the repository, reading gunicorn.conf.py),
    answers a request sent on a connection idle for longer than its default keep-alive of 2 s."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1", "GREENLIGHT_VAR_DIR": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--threads", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        time.sleep(3)
        connection.request("GET", "/healthz")  # the same connection, idle for 3 s
        assert connection.getresponse().status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
