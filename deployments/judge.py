"""Judging a step: do the new colour's measurements meet the environment's limits?

Pure: it reads what the engine measured (deployments.engine gathers it from the outside world)
and the limits of the deploy settings, and answers the verdict with every measured value kept
as evidence. No database, no AWS, no clock: tests/deployments/test_judge.py calls it directly.
"""

from dataclasses import dataclass
from typing import Any

from integrations.aws import Counts


class CheckName:
    """The names the checks are kept under on a stage (`Stage.checks`): shown on the deployment
    page as written, and matched by the engine, the evidence it proves checklist items with, and
    the page's charts, so written once here."""

    TARGET_HEALTH = "Target health"
    REQUESTS = "Requests"
    ERRORS = "5xx errors"
    ERROR_RATE = "5xx error rate"
    P95 = "Latency p95"
    P99 = "Latency p99"
    ALARMS = "Alarms"
    DEPLOYER = "Deployer"


def evidence(
    name: str, ok: bool | None, value: object = None, threshold: object = None, detail: str = ""
) -> dict[str, Any]:
    """One piece of evidence: what was checked, whether it passed (None: not judged), the value
    measured against its threshold, and a word on it."""
    return {"name": name, "ok": ok, "value": value, "threshold": threshold, "detail": detail}


@dataclass(frozen=True)
class Limits:
    """What a step must meet, from the environment's deploy settings."""

    min_requests: int
    max_error_rate: float
    max_p95_ms: float
    max_p99_ms: float


@dataclass
class Measured:
    """What the engine saw of the new colour over the step so far. `latency` is None when it was
    not asked for (too few requests to judge); `firing` is None when no alarm is watched."""

    targets: list[tuple[str, str, str]]
    smoke: list[dict[str, Any]]
    counts: Counts
    latency: dict[str, float | None] | None = None
    firing: list[str] | None = None


@dataclass
class Verdict:
    checks: list[dict[str, Any]]
    failed: str = ""  # why the step failed, in words
    inconclusive: str = ""  # why the metrics could not be judged yet


def enough_requests(counts: Counts, limits: Limits) -> bool:
    """Whether the step saw enough requests for its rates and latencies to be judged."""
    return counts.requests >= limits.min_requests


def judge(measured: Measured, limits: Limits, *, colour: str) -> Verdict:
    """Health, smoke tests, the SLA metrics and the alarms of the new colour `colour`."""
    targets, counts = measured.targets, measured.counts
    sick = [f"{t[0]} {t[1]}" for t in targets if t[1] != "healthy"]
    healthy = f"{len(targets) - len(sick)}/{len(targets)}"
    checks = [
        evidence(
            CheckName.TARGET_HEALTH,
            bool(targets) and not sick,
            healthy,
            detail=", ".join(sick) or "all healthy",
        )
    ]
    checks += measured.smoke
    inconclusive = ""
    allowed_errors = limits.max_error_rate * limits.min_requests
    if not enough_requests(counts, limits) and counts.errors > allowed_errors:
        # Too few requests to judge a rate, but already more errors than the whole sample may have.
        checks.append(
            evidence(
                CheckName.ERRORS,
                False,
                counts.errors,
                round(allowed_errors, 2),
                f"of only {counts.requests} requests",
            )
        )
    elif not enough_requests(counts, limits):
        inconclusive = (
            f"Only {counts.requests} request(s) reached {colour}; {limits.min_requests} are needed "
            "to judge it."
        )
        checks.append(
            evidence(CheckName.REQUESTS, None, counts.requests, limits.min_requests, "not enough traffic yet")
        )
    else:
        checks += [
            evidence(CheckName.REQUESTS, True, counts.requests, limits.min_requests),
            evidence(
                CheckName.ERROR_RATE,
                counts.error_rate <= limits.max_error_rate,
                round(counts.error_rate, 6),
                limits.max_error_rate,
                f"{counts.errors} of {counts.requests} requests",
            ),
        ]
        latency = measured.latency or {}
        percentiles = (("p95", CheckName.P95, limits.max_p95_ms), ("p99", CheckName.P99, limits.max_p99_ms))
        for name, check, limit in percentiles:
            value = latency.get(name)
            if value is None:
                checks.append(evidence(check, None, None, limit, "no data yet"))
                inconclusive = inconclusive or f"CloudWatch has no {name} latency of {colour} yet."
            else:
                checks.append(evidence(check, value <= limit, round(value, 1), limit, "ms"))
    if measured.firing is not None:
        firing = measured.firing
        checks.append(
            evidence(CheckName.ALARMS, not firing, firing, detail=", ".join(firing) or "none in ALARM")
        )
    words = "; ".join(said(c) for c in checks if c["ok"] is False)
    return Verdict(checks=checks, failed=words, inconclusive=inconclusive)


def said(check: dict[str, Any]) -> str:
    """A failed check in words: its name, what was measured, the limit, and the detail."""
    words = f"{check['name']} {check['value']}"
    if isinstance(check.get("value"), int | float) and check.get("threshold") is not None:
        words += f" over {check['threshold']}"
    return words + (f" ({check['detail']})" if check.get("detail") else "")
