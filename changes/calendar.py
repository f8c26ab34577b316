"""When a change may deploy to an environment: inside one of its windows (kept on the environment's
own clock), outside its freezes, and clear of the changes already scheduled there; and, when a
slot is refused, the next one that fits.

Every instant here is UTC. Python compares two datetimes of the same zone by their wall clocks,
which is wrong across a daylight-saving change, so local times are turned into UTC at once.
"""

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from changes.choices import ChangeStatus

# Statuses in which a change holds its slot on the environment.
HOLDS_SLOT = (ChangeStatus.SCHEDULED, ChangeStatus.DEPLOYING, ChangeStatus.VERIFYING)
# How far ahead the next free slot is looked for.
SEARCH_DAYS = 92
# How far ahead a change may be scheduled and a freeze may reach: beyond it a date is a typo (or an
# "until further notice" better said by extending the freeze when it ends).
FARTHEST_AHEAD = timedelta(days=2 * 366)


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime

    def overlaps(self, other: "Slot") -> bool:
        return self.start < other.end and other.start < self.end

    def as_dict(self) -> dict:
        """As the API writes times: ISO 8601 in UTC, with a Z."""
        return {edge: getattr(self, edge).isoformat().replace("+00:00", "Z") for edge in ("start", "end")}

    def text(self, zone: zoneinfo.ZoneInfo) -> str:
        """'Tue 2027-03-02 02:00-03:00 CET' on the environment's clock."""
        start, end = on_clock(self.start, zone), on_clock(self.end, zone)
        until = f"{end:%H:%M %Z}" if end.date() == start.date() else f"{end:%a %Y-%m-%d %H:%M %Z}"
        return f"{start:%a %Y-%m-%d %H:%M}-{until}"


def on_clock(moment: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The instant on the zone's clock, to show it; in UTC where that clock would run past the last
    date a datetime holds (a freeze kept until 9999-12-31 23:59 UTC, seen from east of Greenwich)."""
    try:
        return moment.astimezone(zone)
    except OverflowError:
        return moment.astimezone(UTC)


class TimeRefused(ValueError):
    """A local time the environment's clock skips or shows twice."""


def local_moment(value: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """An instant: an aware datetime as given, a naive one read on the environment's clock, in UTC.

    A naive time the clock skips (spring forward) or shows twice (fall back) is refused rather
    than guessed, since the two readings are an hour apart."""
    try:
        return _local_moment(value, zone)
    except OverflowError:
        raise TimeRefused(f"{value:%Y-%m-%d %H:%M} is too far from today to be a slot.") from None


def _local_moment(value: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    first, second = value.replace(tzinfo=zone), value.replace(tzinfo=zone, fold=1)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value:
        raise TimeRefused(
            f"{value:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks skip it for daylight saving. "
            "Pick a time outside the jump, or give the time with its UTC offset."
        )
    if first.utcoffset() != second.utcoffset():
        raise TimeRefused(
            f"{value:%Y-%m-%d %H:%M} happens twice in {zone.key} (the clocks go back). "
            f"Give the time with its UTC offset: {first.isoformat()} or {second.isoformat()}."
        )
    return first.astimezone(UTC)


def window_slots(windows: Iterable, zone: zoneinfo.ZoneInfo, start: datetime, end: datetime) -> list[Slot]:
    """The occurrences of the windows that overlap [start, end), oldest first."""
    windows = list(windows)
    slots = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        for window in windows:
            if day.weekday() in window.weekdays:
                slot = Slot(_at(day, window.start_time, zone), _at(day, window.end_time, zone))
                if slot.end > start and slot.start < end:
                    slots.append(slot)
        day += timedelta(days=1)
    return sorted(slots, key=lambda s: s.start)


def _at(day: date, clock_time: time, zone: zoneinfo.ZoneInfo) -> datetime:
    # A boundary the clock skips (02:00 on the spring-forward night) falls on the first real
    # minute after the jump; one it shows twice, on its first showing.
    return datetime.combine(day, clock_time, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Calendar:
    """What stands around a slot on one environment: its windows, freezes and held slots."""

    zone: zoneinfo.ZoneInfo
    windows: list
    freezes: list
    taken: list  # (change, Slot) of the other changes holding a slot

    @classmethod
    def of(cls, environment, *, excluding_change_id: int | None = None) -> "Calendar":
        from changes.models import ChangeRequest
        from portal import clock

        others = (
            ChangeRequest.objects.filter(
                environment=environment, status__in=HOLDS_SLOT, scheduled_start__isnull=False
            )
            .exclude(pk=excluding_change_id)
            .only("id", "title", "scheduled_start", "scheduled_end")
        )
        return cls(
            zone=zoneinfo.ZoneInfo(environment.time_zone),
            windows=list(environment.windows.all()),
            # Freezes already over refuse nothing: a slot in the past is refused for being past.
            freezes=list(environment.freezes.filter(ends_at__gt=clock.now())),
            taken=[(c, Slot(c.scheduled_start, c.scheduled_end)) for c in others],
        )

    def refusal(self, slot: Slot, *, now: datetime, emergency: bool = False) -> str | None:
        """Why the slot is refused, in words, or None. An emergency change is held to neither the
        windows nor the freezes, only to one change at a time."""
        if slot.start < now.replace(second=0, microsecond=0):  # a slot from this minute on is not past
            return "That slot is in the past."
        if (
            self.windows
            and not emergency
            and not any(
                w.start <= slot.start and slot.end <= w.end
                for w in window_slots(self.windows, self.zone, slot.start, slot.end)
            )
        ):
            listed = "; ".join(str(w) for w in self.windows)
            return f"That slot is outside the deployment windows ({listed})."
        freeze = self.freeze_over(slot)
        if freeze and not emergency:
            return (
                f"That slot falls in a freeze ({freeze.reason}, until "
                f"{on_clock(freeze.ends_at, self.zone):%Y-%m-%d %H:%M %Z})."
            )
        for change, taken in self.taken:
            if slot.overlaps(taken):
                return (
                    f"{change.number} ({change.title}) is scheduled then ({taken.text(self.zone)}): "
                    "one change deploys to an environment at a time."
                )
        return None

    def freeze_over(self, slot: Slot):
        """The freeze the slot falls in, if any."""
        return next((f for f in self.freezes if slot.overlaps(Slot(f.starts_at, f.ends_at))), None)

    def next_slot(self, duration: timedelta, *, after: datetime, emergency: bool = False) -> Slot | None:
        """The earliest slot of `duration` from `after` (rounded up to the minute) that is refused
        for nothing, or None when none fits in the next SEARCH_DAYS days (or the search would run
        past the last date a datetime holds, as behind a freeze kept until year 9999)."""
        try:
            return self._next_slot(duration, after=after, emergency=emergency)
        except OverflowError:
            return None

    def _next_slot(self, duration: timedelta, *, after: datetime, emergency: bool) -> Slot | None:
        after = _minute_up(after)
        horizon = after + timedelta(days=SEARCH_DAYS)
        busy = [slot for _, slot in self.taken]
        if not emergency:
            busy += [Slot(f.starts_at, f.ends_at) for f in self.freezes]
        busy.sort(key=lambda s: s.start)
        if self.windows and not emergency:
            openings = window_slots(self.windows, self.zone, after, horizon)
        else:
            openings = [Slot(after, horizon)]
        for opening in openings:
            start = max(opening.start, after)
            candidate = _clear_of(busy, Slot(start, start + duration))
            if candidate.end <= opening.end:
                return candidate
        return None


def _clear_of(busy: list[Slot], slot: Slot) -> Slot:
    """The slot, moved later past everything busy it overlaps."""
    moved = True
    while moved:
        moved = False
        for other in busy:
            if slot.overlaps(other):
                slot, moved = Slot(other.end, other.end + (slot.end - slot.start)), True
    return slot


def _minute_up(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


@dataclass(frozen=True)
class Entry:
    """One thing on a day of the calendar page: a window, a freeze or a scheduled change."""

    kind: str  # "window", "freeze" or "change"
    slot: Slot
    label: str
    change: object = None


@dataclass(frozen=True)
class Placed:
    """An entry on one day, with its hours on that day in the viewer's time ("… 03:00", "all day")."""

    entry: Entry
    when: str


@dataclass(frozen=True)
class Day:
    day: date
    entries: list[Placed]
    in_month: bool = True


def days(
    environment, first: date, count: int, viewer_zone: zoneinfo.ZoneInfo, *, month: int | None = None
) -> list[Day]:
    """`count` days from `first` on the viewer's clock, each with the environment's windows,
    freezes and scheduled changes that start or run on it, in the viewer's time."""
    from changes.models import ChangeRequest

    start = datetime.combine(first, time(0), tzinfo=viewer_zone).astimezone(UTC)
    end = datetime.combine(first + timedelta(days=count), time(0), tzinfo=viewer_zone).astimezone(UTC)
    zone = zoneinfo.ZoneInfo(environment.time_zone)
    entries = [
        Entry("window", slot, "Deployment window")
        for slot in window_slots(environment.windows.all(), zone, start, end)
    ]
    entries += [
        Entry("freeze", Slot(f.starts_at, f.ends_at), f"Freeze: {f.reason}")
        for f in environment.freezes.filter(starts_at__lt=end, ends_at__gt=start)
    ]
    changes = ChangeRequest.objects.filter(
        environment=environment, status__in=HOLDS_SLOT, scheduled_start__lt=end, scheduled_end__gt=start
    ).only("id", "title", "status", "change_type", "scheduled_start", "scheduled_end")
    entries += [
        Entry("change", Slot(c.scheduled_start, c.scheduled_end), f"{c.number} {c.title}", change=c)
        for c in changes
    ]
    result = []
    for offset in range(count):
        day = first + timedelta(days=offset)
        opens = datetime.combine(day, time(0), tzinfo=viewer_zone).astimezone(UTC)
        closes = datetime.combine(day + timedelta(days=1), time(0), tzinfo=viewer_zone).astimezone(UTC)
        today = Slot(opens, closes)
        shown = sorted((e for e in entries if e.slot.overlaps(today)), key=lambda e: (e.slot.start, e.kind))
        placed = [Placed(e, _hours_on(e.slot, today, viewer_zone)) for e in shown]
        result.append(Day(day, placed, in_month=month is None or day.month == month))
    return result


def _hours_on(slot: Slot, day: Slot, zone: zoneinfo.ZoneInfo) -> str:
    if slot.start <= day.start and slot.end >= day.end:
        return "all day"
    start = f"{slot.start.astimezone(zone):%H:%M}" if slot.start >= day.start else "…"
    end = f"{slot.end.astimezone(zone):%H:%M}" if slot.end <= day.end else "…"
    return f"{start}–{end}"


def deploy_timing(change, *, now: datetime) -> tuple[bool, str]:
    """Whether the calendar lets the change deploy now: inside its slot, outside any freeze. An
    emergency change needs no slot and goes through a freeze, and says so (an exception)."""
    from changes.choices import ChangeType

    emergency = change.change_type == ChangeType.EMERGENCY
    environment = change.environment
    zone = zoneinfo.ZoneInfo(environment.time_zone)
    freeze = environment.freezes.filter(starts_at__lte=now, ends_at__gt=now).first()
    if freeze and not emergency:
        until = on_clock(freeze.ends_at, zone)
        return False, f"{environment} is frozen until {until:%Y-%m-%d %H:%M %Z} ({freeze.reason})."
    through = f"; through the freeze “{freeze.reason}” (an exception)" if freeze else ""
    if change.scheduled_start is None:
        if emergency:
            return True, f"An emergency change deploys when it is ready{through}."
        return False, "Not scheduled: schedule it into a deployment window."
    slot = Slot(change.scheduled_start, change.scheduled_end)
    if now < slot.start:
        return False, f"Scheduled for {slot.text(zone)}: it deploys in its slot."
    if now >= slot.end:
        return False, f"Its slot ({slot.text(zone)}) has passed: schedule it again."
    return True, f"In its slot ({slot.text(zone)}){through}."


# The slot "Take the next free slot" books on a change's page.
NEXT_SLOT_LENGTH = timedelta(hours=1)


def next_free_slot(change, *, now: datetime) -> "Slot | None":
    """The earliest slot of an hour from this minute on that the change could take, or None."""
    from changes.choices import ChangeType

    calendar = Calendar.of(change.environment, excluding_change_id=change.pk)
    emergency = change.change_type == ChangeType.EMERGENCY
    this_minute = now.replace(second=0, microsecond=0)
    return calendar.next_slot(NEXT_SLOT_LENGTH, after=this_minute, emergency=emergency)
