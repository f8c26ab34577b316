"""Health and readiness for load balancers and orchestrators."""

import logging

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

from portal import heartbeat

logger = logging.getLogger(__name__)


def healthz(request):
    """The process is up and answering; nothing else is checked."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Ready when every database and the broker answer; 503 naming the one that does not."""
    checks = {}
    for alias in connections:
        checks[f"database:{alias}"] = _check_database(alias)
    checks["broker"] = _check_broker()
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks, "processes": _processes()},
        status=200 if ready else 503,
    )


def _check_database(alias: str) -> dict:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not reachable" here
        logger.warning("readiness: database %s unreachable: %s", alias, exc)
        return {"ok": False, "error": _public_error(exc)}
    return {"ok": True}


def _check_broker() -> dict:
    url = settings.CELERY_BROKER_URL
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    try:
        with Connection(url, transport_options=options, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:  # kombu raises the transport's own errors
        logger.warning("readiness: broker unreachable: %s", exc)
        return {"ok": False, "error": _public_error(exc)}
    return {"ok": True}


def _processes() -> dict:
    """When a worker and beat were last seen, and whether that is over a minute ago: for people and
    monitors, not part of the verdict (the web serves pages without them)."""
    return {process.name: process.as_dict() for process in heartbeat.processes()}


def _public_error(exc: Exception) -> str:
    """What kind of failure, without the hosts and ports in the driver's message (that is logged)."""
    return f"unreachable ({exc.__class__.__name__})"


class HealthCheckMiddleware:
    """Answers /healthz and /readyz before anything else, host validation included, so a load
    balancer or container check that calls by IP address gets an answer, not a 400."""

    ROUTES = {"/healthz": healthz, "/readyz": readyz}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = self.ROUTES.get(request.path)
        if view is not None and request.method in ("GET", "HEAD"):
            return view(request)
        return self.get_response(request)
