"""Fixtures every test module may use: users, API clients, the portal clock and a real worker."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django_otp import DEVICE_ID_SESSION_KEY
from rest_framework.test import APIClient

from portal import clock
from portal.roles import Capacity, Role
from tests.factories import UserFactory, totp_device

ROOT = Path(__file__).resolve().parent.parent
# Where the test client's and the live server's requests come from.
LOOPBACK = ("127.0.0.1", "::1")


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if not engine.endswith(".postgresql") or not settings.REDIS_URL:
        raise pytest.UsageError(
            "The suite runs on PostgreSQL and Redis: run it with `make test`, which starts them "
            "and sets DATABASE_URL and REDIS_URL."
        )


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Closes the replica mirror's connections too, so the test database can be dropped."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        connections.close_all()


@pytest.fixture(autouse=True, scope="session")
def _empty_cache():
    """Each run starts from an empty cache, as from an empty database: entries a previous run left
    would name users by ids the new database hands out again."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Passwords are still checked; hashing each one properly would cost a quarter second."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _aws_clients_forgotten():
    """Each test's AWS (a moto mock or server, credentials in the environment) is its own: the
    clients the process keeps are made afresh for it."""
    from integrations.aws import clients_forget

    clients_forget()


@pytest.fixture(autouse=True)
def _audit_anchors_of_the_test(settings, tmp_path):
    """Each test's audit anchors are its own (its database is): a folder of the test's, read
    afresh, and keys read afresh from wherever the test puts them."""
    from portal import chain

    settings.AUDIT_ANCHOR_FOLDER = str(tmp_path / "audit-anchors")
    chain.keys_forget()
    yield
    chain.keys_forget()


@pytest.fixture(autouse=True)
def _portal_clock_reset():
    """Every test starts and ends on real time, whatever it shifted."""
    clock.reset()
    yield
    clock.reset()


@pytest.fixture(autouse=True)
def _status_page_fresh_start():
    """Every test's first request builds the status page afresh, and its client may subscribe: the
    cache outlives the rows the kept page was built from, and the count of subscriptions asked."""
    from django.core.cache import cache

    from incidents import status, status_subscriptions

    status.status_page_forget()
    cache.delete_many([status_subscriptions.subscribe_count_key(ip, at=clock.now()) for ip in LOOPBACK])


@pytest.fixture
def user(db):
    """A developer: the role everyone starts with."""
    return UserFactory()


@pytest.fixture
def developer(db):
    return UserFactory(username="dev", role=Role.DEVELOPER)


@pytest.fixture
def qa(db):
    return UserFactory(username="qa", role=Role.QA)


@pytest.fixture
def devops(db):
    return UserFactory(username="devops", role=Role.DEVOPS)


@pytest.fixture
def release_manager(db):
    return UserFactory(username="rm", role=Role.RELEASE_MANAGER)


@pytest.fixture
def sre(db):
    return UserFactory(username="sre", role=Role.SRE)


@pytest.fixture
def admin(db):
    return UserFactory(username="admin", role=Role.ADMIN, is_staff=True)


@pytest.fixture
def auditor(db):
    return UserFactory(username="auditor", role=Role.AUDITOR)


@pytest.fixture
def policy_admin(db):
    return UserFactory(username="policyadmin", role=Role.RELEASE_MANAGER, capacities=[Capacity.POLICY_ADMIN])


@pytest.fixture
def audit_viewer(auditor):
    return auditor


@pytest.fixture
def aws(monkeypatch):
    """AWS replaced by moto in this process: boto3 clients made inside the test talk to it.

    Fake credentials are set so that nothing can reach a real account even by mistake.
    """
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": settings.AWS_REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def api_client():
    return APIClient()


def verified_login(client, user):
    """Signs the user in with a session that has passed the second factor, as after /login/otp/."""
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = totp_device(user).persistent_id
    session.save()
    return client


def client_for(user, *, verified: bool = True) -> APIClient:
    client = APIClient()
    if verified:
        return verified_login(client, user)
    client.force_login(user)
    return client


def database_url(settings_dict: dict) -> str:
    return (
        f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD']}"
        f"@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
    )


def start_worker(log_path, **env_extra) -> subprocess.Popen:
    """A real `celery worker` process on the test database and the test Redis broker, with
    `env_extra` in its environment; returns once it is ready, its log at `log_path`."""
    from django.db import connections

    env = os.environ.copy()
    test_url = database_url(connections["default"].settings_dict)
    env.update(
        DATABASE_URL=test_url,
        DATABASE_REPLICA_URL=test_url,
        REDIS_URL=settings.REDIS_URL,
        CLOCK_FILE=str(settings.CLOCK_FILE),
        PYTHONUNBUFFERED="1",
        **env_extra,
    )
    log = open(log_path, "w")  # noqa: SIM115 (the worker writes to it until it ends)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"test-{time.monotonic_ns()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while "ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the Celery worker did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    process.log_path = log_path
    return process


@pytest.fixture
def own_queue():
    """A queue of this test's own: the tasks it (and its live server) sends go there, and the
    workers it starts with `CELERY_QUEUE` set to it read only that, never a worker of another test
    that lives on (the session's). Returns the environment to start them with."""
    from config.celery import app

    name = f"test-{time.monotonic_ns()}"
    before = app.conf.task_default_queue
    app.conf.task_default_queue = name
    yield {"CELERY_QUEUE": name}
    app.conf.task_default_queue = before


def stop_worker(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery worker` process on the test database and the test Redis broker.

    Tests that use it need `transactional_db`, so that the worker sees the rows they commit.
    """
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    process = start_worker(tmp_path_factory.mktemp("worker") / "worker.log")
    yield process
    stop_worker(process)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Polls until predicate() is truthy; returns its value or fails with what it last saw."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)
        value = predicate()
    return value


@pytest.fixture
def paris(release_manager):
    """Production in Paris: one approval, deploys Tuesday to Thursday 02:00-05:00 Paris time."""
    from datetime import time as clock_time

    from changes.services import window_create
    from tests.factories import ApprovalPolicyFactory, EnvironmentFactory

    policy = ApprovalPolicyFactory(
        name="One approval", min_approvals=1, min_code_owner_approvals=0, required_sign_offs=[]
    )
    environment = EnvironmentFactory(
        name="paris", display_name="Paris", time_zone="Europe/Paris", approval_policy=policy
    )
    window_create(
        actor=release_manager,
        environment=environment,
        weekdays=[1, 2, 3],
        start_time=clock_time(2),
        end_time=clock_time(5),
    )
    return environment
