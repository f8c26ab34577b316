"""Pages of the portal itself: home, the audit trail, health and readiness, error pages."""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import connections
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from kombu import Connection
from rest_framework.request import Request

from portal import clock, selectors, services
from portal.api import errors
from portal.api.pagination import CursorPagination
from portal.filters import AuditEventFilter
from portal.forms import NotificationTestForm
from portal.routers import replica_reads
from portal.tasks import HEARTBEAT_CACHE_KEY

logger = logging.getLogger(__name__)

TEST_NOTIFICATION_PERMISSION = "portal.send_test_notification"


@login_required
def home(request):
    context = {"now": clock.now()}
    if request.user.has_perm(TEST_NOTIFICATION_PERMISSION):
        context["notification_form"] = NotificationTestForm()
        context["notifications"] = selectors.notifications_recent()
    return render(request, "portal/home.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def notification_test(request):
    """Sends a test message through a channel; the worker delivers it and the list shows how it went."""
    if not request.user.has_perm(TEST_NOTIFICATION_PERMISSION):
        return forbidden(request, reason="Sending a test notification needs the permission to send them.")
    form = NotificationTestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        notification = services.notification_test_send(actor=request.user, **form.cleaned_data)
        messages.success(request, f"Queued a test message to {notification.recipient}; the worker sends it.")
        return redirect("home")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "portal/home.html",
        {"now": clock.now(), "notification_form": form, "notifications": selectors.notifications_recent()},
        status=status,
    )


@login_required
def notification_list(request):
    """The recent notifications, polled by the overview page so a delivery shows without reload."""
    if not request.user.has_perm(TEST_NOTIFICATION_PERMISSION):
        return forbidden(request, reason="Sending a test notification needs the permission to send them.")
    return render(request, "portal/_notifications.html", {"notifications": selectors.notifications_recent()})


@login_required
def audit_list(request):
    if not request.user.has_perm(selectors.AUDIT_VIEW_PERMISSION):
        return forbidden(request, reason="Reading the audit trail needs the audit view permission.")
    events = selectors.audit_events_visible_to(request.user)
    filterset = AuditEventFilter(request.GET, queryset=events)
    paginator = CursorPagination()
    page = []
    if filterset.is_valid():
        with replica_reads():
            page = list(paginator.paginate_queryset(filterset.qs, Request(request)))
    return render(
        request,
        "portal/audit_list.html",
        {
            "filter": filterset,
            "events": page,
            "next_url": paginator.get_next_link() if page else None,
            "previous_url": paginator.get_previous_link() if page else None,
        },
    )


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
        {"status": "ready" if ready else "unavailable", "checks": checks, "worker": _worker_seen()},
        status=200 if ready else 503,
    )


def _check_database(alias: str) -> dict:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not reachable" here
        logger.warning("readiness: database %s unreachable: %s", alias, exc)
        return {"ok": False, "error": _first_line(exc)}
    return {"ok": True}


def _check_broker() -> dict:
    url = settings.CELERY_BROKER_URL
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    try:
        with Connection(url, transport_options=options, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:  # kombu raises the transport's own errors
        logger.warning("readiness: broker unreachable: %s", exc)
        return {"ok": False, "error": _first_line(exc)}
    return {"ok": True}


def _worker_seen() -> dict:
    """When a worker last ran the beat heartbeat: for people, not part of the verdict."""
    try:
        last = cache.get(HEARTBEAT_CACHE_KEY)
    except Exception:  # the cache may be the same unreachable Redis
        last = None
    return {"last_heartbeat": last}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def forbidden(request, exception=None, reason: str | None = None):
    """A 403 that says what is missing, from the PermissionDenied message when there is one."""
    reason = reason or (str(exception) if exception and str(exception) else None)
    if request.path.startswith("/api/"):
        return errors.json_error(403, reason or "You do not have permission to do this.", "permission_denied")
    return render(request, "403.html", {"reason": reason}, status=403)


def csrf_failure(request, reason=""):
    return forbidden(
        request,
        reason="This form expired or came from another site. Reload the page and send it again.",
    )


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return errors.not_found(request, exception)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return errors.server_error(request)
    return render(request, "500.html", {"request_id": getattr(request, "request_id", "")}, status=500)
