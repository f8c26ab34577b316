"""The change calendar: an environment's windows, freezes and scheduled changes by week or month,
in the viewer's time zone; scheduling a change and freezing the environment from it; and the
iCalendar feed of the same, for people's own calendars."""

import zoneinfo
from datetime import date, datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone

from catalogue.models import Environment
from changes import calendar, services
from changes.forms import FreezeForm, ScheduleForm
from changes.services.calendar_feed import calendar_feed_generation, calendar_feed_renew
from portal import clock, mfa
from portal.roles import Right, missing_right_message
from portal.views.errors import forbidden

VIEWS = {"week": 7, "month": None}


@login_required
def calendar_page(request):
    if not request.user.has_perm(Right.CHANGE_VIEW):
        return forbidden(request, reason=missing_right_message(Right.CHANGE_VIEW))
    environments = list(Environment.objects.only("id", "name", "display_name", "time_zone"))
    if not environments:
        return render(request, "changes/calendar.html", {"environments": []})
    environment = next((e for e in environments if e.name == request.GET.get("environment")), environments[0])
    view = request.GET.get("view") if request.GET.get("view") in VIEWS else "week"
    zone = zoneinfo.ZoneInfo(timezone.get_current_timezone_name())
    anchor = _anchor(request.GET.get("date"), zone)
    schedule_form = ScheduleForm(environment=environment, zone=zone, prefix="schedule")
    freeze_form = FreezeForm(zone=zone, prefix="freeze")
    status = 200
    if request.method == "POST":
        act = request.POST.get("act")
        if act == "schedule":
            schedule_form = ScheduleForm(request.POST, environment=environment, zone=zone, prefix="schedule")
            done = _schedule(request, schedule_form)
        elif act == "new_feed":  # every address of the person's made before stops working
            calendar_feed_renew(actor=request.user)
            messages.success(
                request,
                "Your calendar addresses are new: the old ones stop working. Subscribe with the new one.",
            )
            done = True
        elif act == "freeze":
            if not request.user.has_perm(Right.FREEZE_MANAGE):
                return forbidden(request, reason=missing_right_message(Right.FREEZE_MANAGE))
            freeze_form = FreezeForm(request.POST, zone=zone, prefix="freeze")
            done = _freeze(request, freeze_form, environment)
        else:
            done = False
        if done:
            return redirect(request.get_full_path())
        status = 400
    if view == "week":
        first, count, month = anchor - timedelta(days=anchor.weekday()), 7, None
    else:
        first_of_month = anchor.replace(day=1)
        first = first_of_month - timedelta(days=first_of_month.weekday())
        last_of_month = (first_of_month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        count = ((last_of_month - first).days // 7 + 1) * 7
        month = anchor.month
    step = timedelta(days=7) if view == "week" else None
    context = {
        "environments": environments,
        "environment": environment,
        "view": view,
        "zone": zone,
        "days": calendar.days(environment, first, count, zone, month=month),
        "title": f"Week of {first:%d %B %Y}" if view == "week" else f"{anchor:%B %Y}",
        "previous": first - step if step else (anchor.replace(day=1) - timedelta(days=1)).replace(day=1),
        "next": first + step if step else (anchor.replace(day=28) + timedelta(days=5)).replace(day=1),
        "anchor": anchor,
        "schedule_form": schedule_form,
        "freeze_form": freeze_form,
        "feed_url": feed_url(request, environment),
        "feed_expires": clock.now() + FEED_VALID_FOR,
    }
    return render(request, "changes/calendar.html", context, status=status)


def _anchor(value: str | None, zone: zoneinfo.ZoneInfo) -> date:
    try:
        return date.fromisoformat(value) if value else clock.now().astimezone(zone).date()
    except ValueError:
        return clock.now().astimezone(zone).date()


def _schedule(request, form: ScheduleForm) -> bool:
    if not form.is_valid():
        return False
    data = form.cleaned_data
    try:
        change = services.change_schedule(
            actor=request.user, change=data["change"], start=data["start"], end=data["end"]
        )
    except services.ChangeError as error:
        form.add_error(None, error)
        form.suggestion = getattr(error, "next_slot", None)
        return False
    messages.success(request, f"{change.number} is scheduled.")
    return True


def _freeze(request, form: FreezeForm, environment) -> bool:
    """Freezes the environment once the form carries the person's current code."""
    if not (form.is_valid() and mfa.check_form_code(request, form).ok):
        return False
    data = form.cleaned_data
    try:
        freeze = services.freeze_create(
            actor=request.user,
            environment=environment,
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            reason=data["reason"],
        )
    except services.ChangeError as error:
        form.add_error(None, error)
        return False
    inside = ", ".join(change.number for change in freeze.scheduled_inside)
    messages.success(
        request,
        f"{environment} is frozen." + (f" Scheduled inside it, told to move: {inside}." if inside else ""),
    )
    return True


FEED_SALT = "changes.calendar-feed"
# A calendar address works for this long after it was made (a new one is on the calendar page).
FEED_VALID_FOR = timedelta(days=90)
WEEKDAY_CODES = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def feed_url(request, environment) -> str:
    """The viewer's own address of the environment's iCalendar feed. Calendar apps cannot sign
    in, so the address carries a signed key: it works for FEED_VALID_FOR, until the person asks for
    new addresses, or until a new password."""
    from django.core import signing
    from django.urls import reverse

    key = signing.dumps(
        {
            "user": request.user.pk,
            "environment": environment.name,
            "auth": _auth_stamp(request.user),
            "generation": calendar_feed_generation(request.user),
            "made": int(clock.now().timestamp()),
        },
        salt=FEED_SALT,
    )
    return request.build_absolute_uri(reverse("calendar-feed", args=[environment.name])) + f"?key={key}"


def _auth_stamp(user) -> str:
    return user.get_session_auth_hash()[:16]


def calendar_feed(request, name: str):
    """The environment's windows (as weekly recurring events on its own clock), its freezes and
    its scheduled changes, as iCalendar."""
    import icalendar
    from django.core import signing
    from django.http import HttpResponse, HttpResponseForbidden

    from changes.models import ChangeRequest
    from portal.models import User

    try:
        claims = signing.loads(request.GET.get("key", ""), salt=FEED_SALT)
        user = User.objects.get(pk=claims["user"], is_active=True)
    except (signing.BadSignature, User.DoesNotExist, KeyError, TypeError):
        return HttpResponseForbidden(
            "This calendar address is not valid; copy it again from the change calendar."
        )
    if (
        claims.get("environment") != name
        or claims.get("auth") != _auth_stamp(user)
        or claims.get("generation") != calendar_feed_generation(user)
    ):
        return HttpResponseForbidden(
            "This calendar address is not valid; copy it again from the change calendar."
        )
    made = claims.get("made")
    if not isinstance(made, int) or clock.now().timestamp() - made > FEED_VALID_FOR.total_seconds():
        return HttpResponseForbidden(
            f"This calendar address has expired (each works for {FEED_VALID_FOR.days} days); "
            "copy a new one from the change calendar."
        )
    if not user.has_perm(Right.CHANGE_VIEW):
        return HttpResponseForbidden(missing_right_message(Right.CHANGE_VIEW))
    environment = Environment.objects.filter(name=name).first()
    if environment is None:
        return HttpResponse("No such environment.", status=404, content_type="text/plain")
    zone = zoneinfo.ZoneInfo(environment.time_zone)
    feed = icalendar.Calendar()
    feed.add("prodid", "-//Greenlight//Change calendar//EN")
    feed.add("version", "2.0")
    feed.add("x-wr-calname", f"Greenlight: {environment}")
    host = request.get_host()
    since = clock.now() - timedelta(days=30)
    for window in environment.windows.all():
        first = _first_occurrence(window, window.created_at.astimezone(zone).date())
        event = icalendar.Event()
        event.add("uid", f"window-{window.pk}@{host}")
        event.add("summary", f"Deployment window: {environment}")
        event.add("dtstart", datetime.combine(first, window.start_time, tzinfo=zone))
        event.add("dtend", datetime.combine(first, window.end_time, tzinfo=zone))
        event.add("rrule", {"freq": "weekly", "byday": [WEEKDAY_CODES[d] for d in window.weekdays]})
        event.add("dtstamp", window.created_at)
        feed.add_component(event)
    for freeze in environment.freezes.filter(ends_at__gte=since):
        event = icalendar.Event()
        event.add("uid", f"freeze-{freeze.pk}@{host}")
        event.add("summary", f"Freeze of {environment}: {freeze.reason}")
        event.add("dtstart", freeze.starts_at)
        event.add("dtend", freeze.ends_at)
        event.add("dtstamp", freeze.created_at)
        feed.add_component(event)
    scheduled = ChangeRequest.objects.filter(
        environment=environment, status__in=calendar.HOLDS_SLOT, scheduled_end__gte=since
    ).only("id", "title", "scheduled_start", "scheduled_end", "updated_at")
    for change in scheduled:
        event = icalendar.Event()
        event.add("uid", f"change-{change.pk}@{host}")
        event.add("summary", f"{change.number} {change.title}")
        event.add("dtstart", change.scheduled_start)
        event.add("dtend", change.scheduled_end)
        event.add("dtstamp", change.updated_at)
        event.add("url", request.build_absolute_uri(change.get_absolute_url()))
        feed.add_component(event)
    feed.add_missing_timezones()
    return HttpResponse(feed.to_ical(), content_type="text/calendar; charset=utf-8")


def _first_occurrence(window, day: date) -> date:
    while day.weekday() not in window.weekdays:
        day += timedelta(days=1)
    return day
