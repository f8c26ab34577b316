"""Pages of the kernel: the audit trail, test notifications."""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from portal import clock, selectors, services
from portal.api.pagination import page_of, without_cursor
from portal.filters import AuditEventFilter
from portal.forms import NotificationTestForm
from portal.roles import Right, missing_right_message
from portal.routers import replica_reads
from portal.views.errors import forbidden

logger = logging.getLogger(__name__)


@login_required
@require_http_methods(["GET", "POST"])
def notification_test(request):
    """Sends a test message through a channel; the worker delivers it and the list shows how it went."""
    if not request.user.has_perm(Right.NOTIFICATION_TEST):
        return forbidden(request, reason=missing_right_message(Right.NOTIFICATION_TEST))
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
    if not request.user.has_perm(Right.NOTIFICATION_TEST):
        return forbidden(request, reason=missing_right_message(Right.NOTIFICATION_TEST))
    return render(request, "portal/_notifications.html", {"notifications": selectors.notifications_recent()})


@login_required
def audit_list(request):
    if not request.user.has_perm(Right.AUDIT_VIEW):
        return forbidden(request, reason=missing_right_message(Right.AUDIT_VIEW))
    events = selectors.audit_events_visible_to(request.user)
    filterset = AuditEventFilter(request.GET, queryset=events)
    page = {"rows": []}
    if filterset.is_valid():
        with replica_reads():
            page = page_of(request, filterset.qs)
        if page is None:
            return redirect(without_cursor(request))
    return render(
        request,
        "portal/audit_list.html",
        {"filter": filterset, "events": page["rows"], "verdict": selectors.audit_verdict_latest(), **page},
    )
