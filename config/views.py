"""The home page: the signed-in person's work across the apps, open incidents, test notifications."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from changes.selectors import my_work
from incidents.selectors import incidents_overview
from portal import clock, selectors
from portal.forms import NotificationTestForm
from portal.roles import Right


@login_required
def home(request):
    now = clock.now()
    context = {
        "now": now,
        "work": my_work(request.user),
        "incidents": incidents_overview(request.user, now=now),
    }
    if request.user.has_perm(Right.NOTIFICATION_TEST):
        context["notification_form"] = NotificationTestForm()
        context["notifications"] = selectors.notifications_recent()
    return render(request, "portal/home.html", context)
