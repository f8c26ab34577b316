"""Stopping and starting the suite's own Redis and PostgreSQL in place, as `bin/test-services`
runs them: Redis with `redis-server` on the port of REDIS_URL, PostgreSQL through Debian's cluster
tools for the cluster that serves DATABASE_URL's port. The suite runs serially, so nothing else is
using them meanwhile; whatever happens, `redis_started` and `postgres_started` bring them back."""

import subprocess
import time
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import connections


def _redis_address() -> tuple[str, int]:
    url = urlsplit(settings.REDIS_URL)
    return url.hostname or "127.0.0.1", url.port or 6379


def redis_up() -> bool:
    host, port = _redis_address()
    try:
        return bool(redis.Redis(host=host, port=port, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def redis_stopped() -> None:
    """Stops Redis, dropping what it held (it keeps nothing on disk): queued tasks, the cache."""
    host, port = _redis_address()
    redis.Redis(host=host, port=port, socket_timeout=5).shutdown(nosave=True)
    deadline = time.monotonic() + 20
    while redis_up():
        if time.monotonic() > deadline:
            raise AssertionError(f"Redis on {host}:{port} is still answering after SHUTDOWN")
        time.sleep(0.1)


def redis_started() -> None:
    """Starts Redis again as `bin/test-services` does, unless it answers already."""
    if redis_up():
        return
    host, port = _redis_address()
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            host,
            "--daemonize",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 20
    while not redis_up():
        if time.monotonic() > deadline:
            raise AssertionError(f"Redis did not start again on {host}:{port}")
        time.sleep(0.1)


def postgres_cluster() -> tuple[str, str]:
    """The version and name of the Debian cluster serving the test database (`15 main` in CI)."""
    port = str(connections["default"].settings_dict["PORT"] or 5432)
    listed = subprocess.run(["pg_lsclusters", "-h"], check=True, capture_output=True, text=True).stdout
    for line in listed.splitlines():
        version, name, cluster_port, *_ = line.split()
        if cluster_port == port:
            return version, name
    raise AssertionError(f"no PostgreSQL cluster of pg_lsclusters listens on port {port}:\n{listed}")


def _pg_ctlcluster(action: str) -> None:
    version, name = postgres_cluster()
    subprocess.run(["pg_ctlcluster", version, name, action], check=True, capture_output=True)


def postgres_up() -> bool:
    settings_dict = connections["default"].settings_dict
    host, port = settings_dict["HOST"] or "127.0.0.1", str(settings_dict["PORT"] or 5432)
    return subprocess.run(["pg_isready", "-q", "-h", host, "-p", port], check=False).returncode == 0


def postgres_stopped() -> None:
    """Stops the cluster at once (fast shutdown: open sessions are ended, their work rolled back)."""
    _pg_ctlcluster("stop")
    connections.close_all()  # this process's sessions were ended with it


def postgres_started() -> None:
    """Starts the cluster again, unless it is up; this process's next query opens a new session."""
    if not postgres_up():
        _pg_ctlcluster("start")
        deadline = time.monotonic() + 60
        while not postgres_up():
            if time.monotonic() > deadline:
                raise AssertionError("PostgreSQL did not start again")
            time.sleep(0.2)
    connections.close_all()
