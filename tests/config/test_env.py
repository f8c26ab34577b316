import os
import subprocess
import sys

import pytest

from config import env
from tests.conftest import ROOT


def start_up(tmp_path, **variables) -> subprocess.CompletedProcess:
    """Runs `manage.py check` in a fresh process with these variables, as start-up would."""
    env = {**os.environ, "GREENLIGHT_VAR_DIR": str(tmp_path), **variables}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "mysql://db/greenlight", "DATABASE_URL: unsupported database URL"),
        (
            "DATABASE_URL",
            "postgres://db.example.com",
            "DATABASE_URL: 'postgres://db.example.com' names no database",
        ),
        ("DATABASE_REPLICA_URL", "oracle://x/y", "DATABASE_REPLICA_URL: unsupported database URL"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL: expected redis://host:port/db"),
        (
            "TRUSTED_PROXIES",
            "10.0.0.0/8,not-an-ip",
            "TRUSTED_PROXIES: 'not-an-ip' is not an IP address",
        ),
        ("DEBUG", "maybe", "DEBUG: expected true or false"),
        ("SECRET_KEY", "short", "SECRET_KEY: must be at least 32 characters long"),
        ("AWS_ENDPOINT_URL", "localhost:5000", "AWS_ENDPOINT_URL: expected an http(s) URL"),
        ("EMAIL_URL", "pigeon://loft", "EMAIL_URL:"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT: expected one of json, text"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL: expected one of CRITICAL, DEBUG"),
        (
            "CSRF_TRUSTED_ORIGINS",
            "greenlight.example.com",
            "CSRF_TRUSTED_ORIGINS: 'greenlight.example.com' is not",
        ),
        ("SECRET_KEY", "", "SECRET_KEY: is required when DATABASE_URL is not SQLite"),
        ("GITHUB_API_URL", "ftp://key:topsecret@host", "GITHUB_API_URL: expected an http(s) URL"),
        ("DATABASE_PREPARE_THRESHOLD", "-1", "DATABASE_PREPARE_THRESHOLD: expected 0 or more, got -1"),
    ],
)
def test_bad_variable_stops_start_up_with_one_line_naming_it(tmp_path, name, value, message):
    result = start_up(tmp_path, **{name: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"greenlight: configuration error: {message}")


@pytest.mark.parametrize(
    ("name", "value"),
    [("DATABASE_URL", "mysql://app:s3cret@db/greenlight"), ("GITHUB_API_URL", "ftp://app:s3cret@db/")],
)
def test_passwords_in_urls_are_not_printed_in_the_error(tmp_path, name, value):
    result = start_up(tmp_path, **{name: value})
    assert "s3cret" not in result.stderr
    assert "app:***@db" in result.stderr


def test_demo_on_sqlite_generates_its_key(tmp_path):
    result = start_up(tmp_path, DATABASE_URL="", DATABASE_REPLICA_URL="", SECRET_KEY="")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret_key").exists()


def test_good_configuration_starts(tmp_path):
    result = start_up(tmp_path)
    assert result.returncode == 0, result.stderr


def test_sqlite_default_is_tuned_for_several_writing_processes(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    database = env.database("DATABASE_URL", f"sqlite:///{tmp_path}/greenlight.sqlite3")
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert database["OPTIONS"]["timeout"] >= 5
    assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]
    assert "busy_timeout" in database["OPTIONS"]["init_command"]


def test_postgres_url_uses_psycopg(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://app:pw@db.internal:6432/greenlight")
    database = env.database("DATABASE_URL", None)
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == (
        "db.internal",
        6432,
        "greenlight",
    )


@pytest.mark.django_db
def test_a_query_run_again_on_a_connection_is_planned_once_on_the_server():
    from django.db import connection

    from portal.models import User

    for _ in range(3):
        list(User.objects.filter(username="nobody", is_active=True))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('"portal_user"."username" = $1' in statement for statement in prepared), prepared


def test_preparing_is_turned_off_for_a_pooler_in_transaction_mode(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://app:pw@pgbouncer.internal:6432/greenlight")
    monkeypatch.setenv("DATABASE_PREPARE_THRESHOLD", "0")
    options = env.database("DATABASE_URL", None)["OPTIONS"]
    assert "prepare_threshold" not in options and "server_side_binding" not in options


def test_secret_key_is_generated_once_into_var(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setattr(env, "VAR_DIR", tmp_path)
    first = env.secret_key()
    assert len(first) >= 50
    assert env.secret_key() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
