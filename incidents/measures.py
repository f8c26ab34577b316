"""How fast incidents are found, answered and fixed, defined once so that the incident list, the
API, the report and the overview all say the same.

- Time to detect (TTD) = detected_at - started_at: how long the trouble went on before the portal
  knew. When nobody knows when it began (no started_at), it began when it was detected: TTD is 0.
- Time to acknowledge (TTA) = acknowledged_at - detected_at. An incident mitigated or resolved
  without being acknowledged was answered by that step (its response timer stops there too). While
  an open incident waits for its answer, its TTA is measured to now and marked as running.
- Time to resolve (TTR) = resolved_at - detected_at (PagerDuty's definition: from the trigger),
  measured to now and marked as running while the incident is open.

Each figure is judged against its target in incidents.defaults: DETECT_TARGET for TTD, the
severity's RESPONSE_TARGETS for TTA, its RESOLVE_TARGETS for TTR. A figure meets its target when it
is shorter than it (the policy's "< 5 minutes"); a running figure has missed once it reaches its
target and is undecided until then; a severity without a target is neither met nor missed.

Over a period (incidents by detected_at), each measure is summarised per severity and in total: the
median and 90th percentile of the finished figures (linear between the nearest ranks, as
PostgreSQL's percentile_cont) and the share of decided figures within target.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from incidents import defaults
from incidents.models import Incident, Severity

# What the measures read of an incident (the rest of the row may stay in the database).
MEASURED_FIELDS = (
    "severity",
    "started_at",
    "detected_at",
    "acknowledged_at",
    "mitigated_at",
    "resolved_at",
)
MEASURES = ("ttd", "tta", "ttr")
# The report's period in days: by default, and at most.
REPORT_DAYS = 30
REPORT_DAYS_MAX = 365


def detect_target(severity: str) -> timedelta | None:
    return defaults.DETECT_TARGET


def acknowledge_target(severity: str) -> timedelta | None:
    return defaults.RESPONSE_TARGETS.get(severity)


def resolve_target(severity: str) -> timedelta | None:
    return defaults.RESOLVE_TARGETS.get(severity)


TARGETS = {"ttd": detect_target, "tta": acknowledge_target, "ttr": resolve_target}


def duration_in_words(value: timedelta | float | None) -> str:
    """'45 s', '4 min', '1 h 12 min', '2 d 3 h'; whole units, rounded down; '—' for nothing."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _judged(seconds: float, target: timedelta | None, running: bool) -> bool | None:
    if target is None:
        return None
    if seconds >= target.total_seconds():
        return False
    return None if running else True


@dataclass(frozen=True)
class Figure:
    """One measure of one incident: whole seconds, its target, and whether it still runs."""

    seconds: int
    target: timedelta | None
    running: bool = False

    @property
    def met(self) -> bool | None:
        """True or False against the target; None without one, or while running within it."""
        return _judged(self.seconds, self.target, self.running)

    @property
    def missed(self) -> bool:
        return self.met is False

    @property
    def words(self) -> str:
        return duration_in_words(self.seconds)

    @property
    def target_words(self) -> str:
        return f"< {duration_in_words(self.target)}" if self.target is not None else "no target"


@dataclass(frozen=True)
class Measures:
    ttd: Figure
    tta: Figure
    ttr: Figure


def _between(start: datetime, end: datetime) -> int:
    return max(int((end - start).total_seconds()), 0)


def incident_measures(incident: Incident, now: datetime) -> Measures:
    """TTD, TTA and TTR of one incident as of `now` (the running ones are measured to it)."""
    detected = incident.detected_at
    answered = incident.acknowledged_at or incident.mitigated_at or incident.resolved_at
    severity = incident.severity
    return Measures(
        ttd=Figure(_between(incident.started_at or detected, detected), detect_target(severity)),
        tta=Figure(_between(detected, answered or now), acknowledge_target(severity), answered is None),
        ttr=Figure(
            _between(detected, incident.resolved_at or now),
            resolve_target(severity),
            incident.resolved_at is None,
        ),
    )


def percentile(values: list[float], fraction: float) -> float | None:
    """The value below which `fraction` of `values` lie, linear between the two nearest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    """One measure over a set of incidents. `target` judges the median and 90th percentile (None
    where the incidents' targets differ); each figure counts as met or missed against its own."""

    target: timedelta | None
    finished: int
    running: int
    median: float | None
    p90: float | None
    met: int
    missed: int

    @property
    def decided(self) -> int:
        return self.met + self.missed

    @property
    def within_target(self) -> float | None:
        """The share of decided figures within target, from 0 to 1; None when none was decided."""
        return self.met / self.decided if self.decided else None

    @property
    def within_target_percent(self) -> int | None:
        share = self.within_target
        return None if share is None else round(share * 100)

    @property
    def median_met(self) -> bool | None:
        return None if self.median is None else _judged(self.median, self.target, False)

    @property
    def p90_met(self) -> bool | None:
        return None if self.p90 is None else _judged(self.p90, self.target, False)

    @property
    def target_words(self) -> str:
        return f"< {duration_in_words(self.target)}" if self.target is not None else ""

    @property
    def target_seconds(self) -> int | None:
        return None if self.target is None else int(self.target.total_seconds())

    @property
    def median_seconds(self) -> int | None:
        return None if self.median is None else round(self.median)

    @property
    def p90_seconds(self) -> int | None:
        return None if self.p90 is None else round(self.p90)


def summarise(figures: list[Figure], target: timedelta | None) -> Summary:
    finished = [figure.seconds for figure in figures if not figure.running]
    return Summary(
        target=target,
        finished=len(finished),
        running=len(figures) - len(finished),
        median=percentile(finished, 0.5),
        p90=percentile(finished, 0.9),
        met=sum(1 for figure in figures if figure.met is True),
        missed=sum(1 for figure in figures if figure.met is False),
    )


@dataclass(frozen=True)
class ReportRow:
    severity: str
    incidents: int
    ttd: Summary
    tta: Summary
    ttr: Summary


@dataclass(frozen=True)
class Report:
    days: int
    since: datetime
    until: datetime
    rows: list[ReportRow]
    total: ReportRow


def _row(severity: str, measured: list[Measures], targets: dict[str, timedelta | None]) -> ReportRow:
    summaries = {name: summarise([getattr(m, name) for m in measured], targets[name]) for name in MEASURES}
    return ReportRow(severity=severity, incidents=len(measured), **summaries)


def _shared_target(name: str) -> timedelta | None:
    """The target every severity shares for this measure, if they all share one."""
    targets = {TARGETS[name](severity) for severity in Severity.values}
    return targets.pop() if len(targets) == 1 else None


def measures_report(incidents: list[Incident], *, days: int, since: datetime, until: datetime) -> Report:
    """Every severity's row (an empty one too) and the total, from the period's incidents."""
    by_severity: dict[str, list[Measures]] = {severity: [] for severity in Severity.values}
    for incident in incidents:
        by_severity.setdefault(incident.severity, []).append(incident_measures(incident, until))
    rows = [
        _row(severity, measured, {name: TARGETS[name](severity) for name in MEASURES})
        for severity, measured in by_severity.items()
    ]
    everything = [m for measured in by_severity.values() for m in measured]
    total = _row("all", everything, {name: _shared_target(name) for name in MEASURES})
    return Report(days=days, since=since, until=until, rows=rows, total=total)
