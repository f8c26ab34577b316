"""Health and readiness for load balancers and orchestrators, and metrics for Prometheus."""

import hmac
import ipaddress
import logging
import os
import threading
import time

from django.conf import settings
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

from portal import heartbeat
from portal.middleware import client_ip

logger = logging.getLogger(__name__)


def healthz(request):
    """The process is up and answering; nothing else is checked."""
    return JsonResponse({"status": "ok"})


# How long an answer of /readyz is served again to callers who may not scrape the metrics: anyone
# can call it, and each fresh answer opens a connection to every database and the broker.
READINESS_KEPT_SECONDS = 5.0


class _Readiness:
    """The last readiness answer of this process, and the lock that lets one probe run at a time."""

    lock = threading.Lock()
    answer: tuple[float, dict, int] | None = None


def readiness_forget() -> None:
    """The next /readyz call probes afresh (each test starts without a kept answer)."""
    with _Readiness.lock:
        _Readiness.answer = None


@never_cache
def readyz(request):
    """Ready when every database and the broker answer; 503 naming the one that does not.

    A monitor that may scrape the metrics (METRICS_TOKEN, METRICS_NETWORKS) gets a fresh answer;
    anyone else the last one, when it is under READINESS_KEPT_SECONDS old."""
    fresh = _may_scrape(request)
    with _Readiness.lock:
        kept = _Readiness.answer
        if fresh or kept is None or time.monotonic() - kept[0] >= READINESS_KEPT_SECONDS:
            kept = (time.monotonic(), *_readiness())
            _Readiness.answer = kept
    _at, body, status = kept
    return JsonResponse(body, status=status)


def _readiness() -> tuple[dict, int]:
    checks = {}
    for alias in connections:
        checks[f"database:{alias}"] = _check_database(alias)
    checks["broker"] = _check_broker()
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks, "processes": _processes()}
    return body, 200 if ready else 503


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


@never_cache
def metrics(request):
    """Prometheus's text format: django-prometheus's request and database series (this process's,
    or the machine's with PROMETHEUS_MULTIPROC_DIR) and the portal's own (portal.metrics). For a
    bearer METRICS_TOKEN or a client in METRICS_NETWORKS; anyone else is refused in words."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    from portal import metrics as portal_metrics

    if not _may_scrape(request):
        return HttpResponse(
            "Metrics answer a bearer token (METRICS_TOKEN) or a client in METRICS_NETWORKS.\n",
            status=403,
            content_type="text/plain",
        )
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    body = generate_latest(processes) + generate_latest(portal_metrics.registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def _may_scrape(request) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    address = client_ip(request.META)
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in settings.METRICS_NETWORKS)


def _public_error(exc: Exception) -> str:
    """What kind of failure, without the hosts and ports in the driver's message (that is logged)."""
    return f"unreachable ({exc.__class__.__name__})"


class HealthCheckMiddleware:
    """Answers /healthz, /readyz and /metrics before anything else, host validation included, so a
    load balancer, container check or Prometheus that calls by IP address gets an answer, not a 400."""

    ROUTES = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = self.ROUTES.get(request.path)
        if view is not None and request.method in ("GET", "HEAD"):
            return view(request)
        return self.get_response(request)
