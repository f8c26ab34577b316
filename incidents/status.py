"""What the public status page shows, built from public incidents and the change calendar.

Only what a customer may read leaves here: the services marked `on_status_page` (no other service
is named, not even as one an incident or maintenance affects), public incidents under their public
titles (an incident's own title may name changes and systems), their public updates in public
wording (a step is told in a standard sentence, never with the note given with it, which is for the
team; a public note as it was written), and scheduled maintenance as services and times, never a
change's title. The page is built in a fixed number of queries, however many
services and incidents there are, inside one short transaction that PostgreSQL cancels when it runs
slow.

The last page built is kept in the cache: served as it is while younger than FRESH_FOR and nothing
public has changed since (`status_page_forget` says something has), and served with when it was
built when the database cannot be read.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db import connection, models, transaction
from django.db.models import Prefetch, Q

from incidents.measures import duration_in_words
from incidents.models import Incident, IncidentStatus, Severity, TimelineEntry
from portal import clock

logger = logging.getLogger(__name__)

# How far back the history and uptime reach, and how far ahead maintenance is announced.
HISTORY_DAYS = 90
MAINTENANCE_AHEAD = timedelta(days=14)
# A status page that waits on a slow database is no use: PostgreSQL cancels each read slower than this.
STATEMENT_TIMEOUT_MS = 2000
# The kept page is served without reading the database while younger than this, unless something
# public changed since it was built.
FRESH_FOR = timedelta(seconds=30)
# The last page built; the version changes whenever the shape of what is kept changes.
CACHE_KEY = "status-page:v2"
# A counter raised by each public change: a kept page built before the last one is stale.
GENERATION_KEY = "status-page:generation"


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

# An incident's status in public words: an acknowledgement finds no cause yet.
STATUS_WORDS = {
    IncidentStatus.TRIGGERED: "Investigating",
    IncidentStatus.ACKNOWLEDGED: "Investigating",
    IncidentStatus.MITIGATED: "Monitoring",
    IncidentStatus.RESOLVED: "Resolved",
}
# The steps customers are told of (declared is the triggered one), each in the one sentence it says.
STEP_SENTENCES = {
    IncidentStatus.TRIGGERED: "We are looking into the problem.",
    IncidentStatus.MITIGATED: "A fix is in place and we are watching the results.",
    IncidentStatus.RESOLVED: "This incident has been resolved.",
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
        return duration_in_words(self.resolved_at - self.began_at) if self.resolved_at else ""


@dataclass(frozen=True)
class Day:
    """One day of a service's history (UTC): its worst state and how long it was down."""

    day: date
    state: DayState
    downtime: timedelta

    @property
    def summary(self) -> str:
        said = f"{self.day:%a %-d %b %Y}: {self.state.label}"
        return f"{said}, {duration_in_words(self.downtime)} down" if self.downtime else said


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


def worst(states) -> ServiceState:
    return max(states, key=_WORSENING.index, default=ServiceState.OPERATIONAL)


def update_of(entry: TimelineEntry) -> Update | None:
    """A public timeline entry in public words, or None for one the public is not told of.

    A public note is told as it was written: a person wrote it for customers. The declared entry and
    the mitigated and resolved steps are told in their standard sentence only: the note given with a
    step is for the team, and the entry's own text names whoever acted. Any other step (an
    acknowledgement, public in older timelines) is not told."""
    if entry.kind == TimelineEntry.Kind.NOTE:
        return Update(at=entry.at, word=PUBLIC_NOTE_WORD, text=entry.text)
    if entry.kind == TimelineEntry.Kind.DECLARED:
        status = IncidentStatus.TRIGGERED
    elif entry.kind == TimelineEntry.Kind.STATUS and entry.data.get("status") in STEP_SENTENCES:
        status = IncidentStatus(entry.data["status"])
    else:
        return None
    return Update(at=entry.at, word=STATUS_WORDS[status], text=STEP_SENTENCES[status])


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
        # Its public title only: its own may name changes and systems. One published before public
        # titles were asked for is called by its impact.
        title=incident.public_title or SEVERITY_STATE[incident.severity].label,
        state=SEVERITY_STATE[incident.severity],
        status_word=STATUS_WORDS[incident.status],
        services=tuple(sorted(s.name for s in incident.public_services)),
        began_at=incident.began_at,
        resolved_at=incident.resolved_at,
        updates=tuple(u for u in updates if u is not None),
    )


def public_incidents(*, now: datetime) -> list[Incident]:
    """The public incidents still open or resolved in the last HISTORY_DAYS, with the services on
    the page they affect and their public updates (newest first): three queries."""
    from catalogue.models import Service

    since = now - timedelta(days=HISTORY_DAYS)
    incidents = (
        Incident.objects.filter(public=True)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=since))
        .only("id", "public_title", "severity", "status", "started_at", "detected_at", "resolved_at")
        .prefetch_related(
            Prefetch(
                "services",
                queryset=Service.objects.filter(on_status_page=True).only("id", "name"),
                to_attr="public_services",
            ),
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
    MAINTENANCE_AHEAD, with the services on the page they touch (of the environment's when they name
    none; none at all when those are all internal)."""
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
                sorted(
                    s.name
                    for s in change.services.all() or change.environment.services.all()
                    if s.on_status_page
                )
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
    from catalogue.models import Service

    now = clock.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(STATEMENT_TIMEOUT_MS)}")
        names = list(
            Service.objects.filter(on_status_page=True).order_by("name").values_list("name", flat=True)
        )
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


@dataclass(frozen=True)
class KeptPage:
    """The last page built, with the count of public changes read before it was built."""

    generation: int
    page: StatusPage


def status_page_current() -> StatusPage:
    """The page to serve. The kept one, read from the cache alone, while it is younger than
    FRESH_FOR and nothing public has changed since it was built; otherwise one built afresh (a
    DatabaseError as status_page_build raises it) and kept. The count of changes is read before the
    build, so a change that commits during it leaves the page it builds stale."""
    try:
        found = cache.get_many([CACHE_KEY, GENERATION_KEY])
    except Exception:  # the cache's own errors depend on its backend (Redis: ConnectionError)
        logger.warning("status page: the cache could not be read", exc_info=True)
        return status_page_build()
    kept, generation = found.get(CACHE_KEY), found.get(GENERATION_KEY, 0)
    now = clock.now()
    if (
        isinstance(kept, KeptPage)
        and kept.generation == generation
        and now - FRESH_FOR < kept.page.built_at <= now
    ):
        return kept.page
    page = status_page_build()
    status_page_keep(page, generation=generation)
    return page


def status_page_forget() -> None:
    """Says something public changed (an update committed, an incident went on or off the page): the
    next request builds the page afresh. The kept copy stays, for when the database cannot be read;
    a cache that cannot be written leaves it fresh for FRESH_FOR at most."""
    try:
        cache.add(GENERATION_KEY, 0, timeout=None)
        cache.incr(GENERATION_KEY)
    except Exception:  # as above; or the counter expired between the two calls (a ValueError)
        logger.warning("status page: the cache could not be told of a change", exc_info=True)


def status_page_keep(page: StatusPage, *, generation: int) -> None:
    """Keeps the page as the last good copy; a cache that cannot be written loses only that."""
    try:
        cache.set(CACHE_KEY, KeptPage(generation=generation, page=page), timeout=None)
    except Exception:  # as above
        logger.warning("status page: the cache could not keep the page", exc_info=True)


def status_page_kept() -> StatusPage | None:
    """The last good copy, or None when there is none (or the cache cannot be read)."""
    try:
        kept = cache.get(CACHE_KEY)
    except Exception:  # as above; a copy kept by another version of the code unpickles badly too
        logger.warning("status page: the cache could not be read", exc_info=True)
        return None
    return kept.page if isinstance(kept, KeptPage) else None
