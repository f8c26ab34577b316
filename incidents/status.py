"""What the public status page shows, built from public incidents and the change calendar.

Only what a customer may read leaves here: public incidents, their public updates in public wording
(never a timeline entry's own text, which names people), the services they affect, and scheduled
maintenance as services and times, never a change's title. The page is built in a fixed number of
queries, however many services and incidents there are, inside one short transaction that
PostgreSQL cancels when it runs slow; the last page built is kept in the cache with when it was
built, for when the database cannot be read.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db import connection, models, transaction
from django.db.models import Prefetch, Q

from incidents.models import Incident, IncidentStatus, Severity, TimelineEntry
from portal import clock

logger = logging.getLogger(__name__)

# How far back the history and uptime reach, and how far ahead maintenance is announced.
HISTORY_DAYS = 90
MAINTENANCE_AHEAD = timedelta(days=14)
# A status page that waits on a slow database is no use: PostgreSQL cancels its reads after this.
STATEMENT_TIMEOUT_MS = 2000
# The last page built; the version changes whenever the shape of what is kept changes.
CACHE_KEY = "status-page:v1"


class ServiceState(models.TextChoices):
    """A service's state as the public reads it, from the best to the worst."""

    OPERATIONAL = "operational", "Operational"
    DEGRADED = "degraded", "Degraded performance"
    PARTIAL_OUTAGE = "partial_outage", "Partial outage"
    MAJOR_OUTAGE = "major_outage", "Major outage"


# What an active public incident of each severity means for the services it affects.
SEVERITY_STATE = {
    Severity.P0: ServiceState.MAJOR_OUTAGE,
    Severity.P1: ServiceState.PARTIAL_OUTAGE,
    Severity.P2: ServiceState.DEGRADED,
    Severity.P3: ServiceState.DEGRADED,
}
# The severities whose time counts as downtime against a service's uptime.
DOWNTIME_SEVERITIES = frozenset({Severity.P0, Severity.P1})
_WORSENING = list(ServiceState)

# An incident's status in public words, and what an update says when its author added no note.
STATUS_WORDS = {
    IncidentStatus.TRIGGERED: "Investigating",
    IncidentStatus.ACKNOWLEDGED: "Identified",
    IncidentStatus.MITIGATED: "Monitoring",
    IncidentStatus.RESOLVED: "Resolved",
}
STATUS_SENTENCES = {
    IncidentStatus.TRIGGERED: "We are looking into the problem.",
    IncidentStatus.ACKNOWLEDGED: "The cause has been found and a fix is under way.",
    IncidentStatus.MITIGATED: "A fix is in place and we are watching the results.",
    IncidentStatus.RESOLVED: "The problem is resolved.",
}
PUBLIC_NOTE_WORD = "Update"


class DayState(models.TextChoices):
    OPERATIONAL = "operational", "No incidents"
    DEGRADED = "degraded", "Degraded performance"
    OUTAGE = "outage", "Outage"


@dataclass(frozen=True)
class Update:
    """One public update of an incident: its word (Investigating … Resolved) and what it says."""

    at: datetime
    word: str
    text: str


@dataclass(frozen=True)
class PublicIncident:
    title: str
    state: ServiceState
    status_word: str
    services: tuple[str, ...]
    began_at: datetime
    resolved_at: datetime | None
    updates: tuple[Update, ...]  # newest first

    @property
    def resolution(self) -> str:
        """What the resolving update said."""
        resolved = STATUS_WORDS[IncidentStatus.RESOLVED]
        return next((u.text for u in self.updates if u.word == resolved), "")

    @property
    def duration(self) -> str:
        return duration_text(self.resolved_at - self.began_at) if self.resolved_at else ""


@dataclass(frozen=True)
class Day:
    """One day of a service's history (UTC): its worst state and how long it was down."""

    day: date
    state: DayState
    downtime: timedelta

    @property
    def summary(self) -> str:
        said = f"{self.day:%a %-d %b %Y}: {self.state.label}"
        return f"{said}, {duration_text(self.downtime)} down" if self.downtime else said


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: ServiceState
    uptime: Decimal  # percent over HISTORY_DAYS, two decimals
    days: tuple[Day, ...]  # oldest first, today last

    @property
    def days_down(self) -> int:
        return sum(d.state == DayState.OUTAGE for d in self.days)

    @property
    def days_degraded(self) -> int:
        return sum(d.state == DayState.DEGRADED for d in self.days)


@dataclass(frozen=True)
class Maintenance:
    """A scheduled change in production, as the public sees it: the services and the window."""

    services: tuple[str, ...]
    start: datetime
    end: datetime
    in_progress: bool

    @property
    def window(self) -> str:
        """'Tue 4 Mar 2025, 01:00–02:00 UTC', or with both dates when it runs past midnight."""
        start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%a %-d %b %Y, %H:%M}"
        return f"{start:%a %-d %b %Y, %H:%M}–{until} UTC"


@dataclass(frozen=True)
class StatusPage:
    built_at: datetime
    state: ServiceState  # the worst of the active incidents
    services: tuple[ServiceStatus, ...]
    active: tuple[PublicIncident, ...]  # newest first
    maintenance: tuple[Maintenance, ...]  # soonest first
    past: tuple[PublicIncident, ...]  # resolved in the last HISTORY_DAYS, latest first

    @property
    def all_operational(self) -> bool:
        return self.state == ServiceState.OPERATIONAL


def duration_text(span: timedelta) -> str:
    """'2 d 3 h', '1 h 5 min', '4 min', '< 1 min'."""
    minutes = int(span.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes)
    return " ".join(parts[:2]) or "< 1 min"


def worst(states) -> ServiceState:
    return max(states, key=_WORSENING.index, default=ServiceState.OPERATIONAL)


def update_of(entry: TimelineEntry) -> Update | None:
    """A public timeline entry in public words, or None for a kind the public is not told of.

    The declared and status entries are told by the status they mark and the note given with them
    (their own text names whoever acted); a public note is told as it was written."""
    if entry.kind == TimelineEntry.Kind.NOTE:
        return Update(at=entry.at, word=PUBLIC_NOTE_WORD, text=entry.text)
    if entry.kind == TimelineEntry.Kind.DECLARED:
        status = IncidentStatus.TRIGGERED
    elif entry.kind == TimelineEntry.Kind.STATUS and entry.data.get("status") in STATUS_WORDS:
        status = IncidentStatus(entry.data["status"])
    else:
        return None
    note = str(entry.data.get("note") or "").strip()
    return Update(at=entry.at, word=STATUS_WORDS[status], text=note or STATUS_SENTENCES[status])


def merged(intervals) -> list[tuple[datetime, datetime]]:
    """The intervals with overlapping and touching ones joined, in order."""
    joined: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


def _overlap(intervals, start: datetime, end: datetime) -> timedelta:
    return sum((min(e, end) - max(s, start) for s, e in intervals if s < end and e > start), timedelta(0))


def uptime_percent(downtime: timedelta, period: timedelta) -> Decimal:
    up = Decimal(max(period - downtime, timedelta(0)) // timedelta(microseconds=1))
    whole = Decimal(period // timedelta(microseconds=1))
    return (up * 100 / whole).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def service_history(name: str, incidents, *, now: datetime) -> ServiceStatus:
    """A service's current state, its days and its uptime over HISTORY_DAYS, from the public
    incidents affecting it: P0 and P1 count as down from when the trouble began (or was detected)
    until resolved (or now), overlaps counted once; P2 and P3 mark their days degraded."""
    since = now - timedelta(days=HISTORY_DAYS)
    down, degraded = [], []
    for incident in incidents:
        interval = (incident.began_at, incident.resolved_at or now)
        (down if incident.severity in DOWNTIME_SEVERITIES else degraded).append(interval)
    down, degraded = merged(down), merged(degraded)
    days = []
    today = now.astimezone(UTC).date()
    for back in range(HISTORY_DAYS - 1, -1, -1):
        day = today - timedelta(days=back)
        opens = datetime.combine(day, time(0), tzinfo=UTC)
        closes = min(opens + timedelta(days=1), now)
        lost = _overlap(down, opens, closes)
        if lost:
            state = DayState.OUTAGE
        elif _overlap(degraded, opens, closes):
            state = DayState.DEGRADED
        else:
            state = DayState.OPERATIONAL
        days.append(Day(day=day, state=state, downtime=lost))
    active = [SEVERITY_STATE[i.severity] for i in incidents if i.status != IncidentStatus.RESOLVED]
    return ServiceStatus(
        name=name,
        state=worst(active),
        uptime=uptime_percent(_overlap(down, since, now), now - since),
        days=tuple(days),
    )


def _public_incident(incident: Incident) -> PublicIncident:
    updates = (update_of(entry) for entry in incident.public_updates)
    return PublicIncident(
        title=incident.title,
        state=SEVERITY_STATE[incident.severity],
        status_word=STATUS_WORDS[incident.status],
        services=tuple(sorted(s.name for s in incident.public_services)),
        began_at=incident.began_at,
        resolved_at=incident.resolved_at,
        updates=tuple(u for u in updates if u is not None),
    )


def public_incidents(*, now: datetime) -> list[Incident]:
    """The public incidents still open or resolved in the last HISTORY_DAYS, with their services
    and public updates (newest first): three queries."""
    since = now - timedelta(days=HISTORY_DAYS)
    incidents = (
        Incident.objects.filter(public=True)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=since))
        .only("id", "title", "severity", "status", "started_at", "detected_at", "resolved_at")
        .prefetch_related(
            Prefetch("services", to_attr="public_services"),
            Prefetch(
                "timeline",
                queryset=TimelineEntry.objects.filter(public=True).order_by("-at", "-id"),
                to_attr="public_updates",
            ),
        )
        .order_by("-detected_at", "-id")
    )
    incidents = list(incidents)
    for incident in incidents:
        incident.began_at = incident.started_at or incident.detected_at
    return incidents


def maintenance_ahead(*, now: datetime) -> list[Maintenance]:
    """Changes holding a slot in a production environment that ends after now and starts within
    MAINTENANCE_AHEAD, with the services they touch (the environment's when they name none)."""
    from changes.calendar import HOLDS_SLOT
    from changes.models import ChangeRequest

    changes = (
        ChangeRequest.objects.filter(
            environment__is_production=True,
            status__in=HOLDS_SLOT,
            scheduled_start__lt=now + MAINTENANCE_AHEAD,
            scheduled_end__gt=now,
        )
        .select_related("environment")
        .only("id", "scheduled_start", "scheduled_end", "environment__id")
        .prefetch_related("services", "environment__services")
        .order_by("scheduled_start", "id")
    )
    return [
        Maintenance(
            services=tuple(
                sorted(s.name for s in change.services.all() or change.environment.services.all())
            ),
            start=change.scheduled_start,
            end=change.scheduled_end,
            in_progress=change.scheduled_start <= now,
        )
        for change in changes
    ]


def status_page_build() -> StatusPage:
    """Reads everything the page shows, in one transaction that PostgreSQL cancels after
    STATEMENT_TIMEOUT_MS (a DatabaseError for the caller, like any failed read)."""
    from deployments.models import Service

    now = clock.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(STATEMENT_TIMEOUT_MS)}")
        names = list(Service.objects.order_by("name").values_list("name", flat=True))
        incidents = public_incidents(now=now)
        maintenance = maintenance_ahead(now=now)
    affecting = defaultdict(list)
    for incident in incidents:
        for service in incident.public_services:
            affecting[service.name].append(incident)
    active = [i for i in incidents if i.status != IncidentStatus.RESOLVED]
    resolved = [i for i in incidents if i.status == IncidentStatus.RESOLVED]
    resolved.sort(key=lambda i: i.resolved_at, reverse=True)
    return StatusPage(
        built_at=now,
        state=worst(SEVERITY_STATE[i.severity] for i in active),
        services=tuple(service_history(name, affecting[name], now=now) for name in names),
        active=tuple(_public_incident(i) for i in active),
        maintenance=tuple(maintenance),
        past=tuple(_public_incident(i) for i in resolved),
    )


def status_page_keep(page: StatusPage) -> None:
    """Keeps the page as the last good copy; a cache that cannot be written loses only that."""
    try:
        cache.set(CACHE_KEY, page, timeout=None)
    except Exception:  # the cache's own errors depend on its backend (Redis: ConnectionError)
        logger.warning("status page: the cache could not keep the page", exc_info=True)


def status_page_kept() -> StatusPage | None:
    """The last good copy, or None when there is none (or the cache cannot be read)."""
    try:
        page = cache.get(CACHE_KEY)
    except Exception:  # as above; a copy kept by another version of the code unpickles badly too
        logger.warning("status page: the cache could not be read", exc_info=True)
        return None
    return page if isinstance(page, StatusPage) else None
