"""The simulated production's shared state, for the demo and the tests: what each colour (target
group) runs and how it behaves, the bad-release switch, and the latencies the traffic generator
measured. Kept in the cache, so the web, the workers, the traffic generator and a test all see the
same colours. Only the simulated deployer, the simulated telemetry and the simulator read it."""

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache

from portal import clock

KEY = "simulation:{}"
LATENCIES = "simulation:latencies:{}"
SWITCH = "simulation:next-release:{}"
# What a bad release does: answers some requests with 500, or answers slowly.
FAULTS = {"": "Good", "errors": "Errors (1 request in 5 fails)", "slow": "Slow (about a second a request)"}
# The latency samples kept per colour: enough for the last minutes of a busy demo.
KEEP_SAMPLES = 20_000
KEEP_FOR = timedelta(minutes=15)


@dataclass
class Behaviour:
    """How a colour behaves: the version it runs, healthy or not, its fault, alarms it sets off."""

    version: str = ""
    healthy: bool = True
    fault: str = ""
    alarms: list[str] = field(default_factory=list)


def behaviour(target_group_arn: str) -> Behaviour:
    return Behaviour(**(cache.get(KEY.format(target_group_arn)) or {}))


def behave(target_group_arn: str, **changes) -> Behaviour:
    """Changes how a colour behaves (a test's failing step, the simulator's start)."""
    current = asdict(behaviour(target_group_arn))
    current.update(changes)
    cache.set(KEY.format(target_group_arn), current, timeout=None)
    return Behaviour(**current)


def deploy(target_group_arn: str, version: str, environment: str) -> Behaviour:
    """The simulated deployer: the colour runs `version` from now on, bad if the environment's
    switch says so (which then turns back to good: it is about the next release only)."""
    fault = next_release_fault(environment)
    cache.delete(SWITCH.format(environment))
    return behave(target_group_arn, version=version, fault=fault)


def next_release_fault(environment: str) -> str:
    """The bad-release switch: what the next release deployed to this environment does."""
    return cache.get(SWITCH.format(environment)) or ""


def next_release_fault_set(environment: str, fault: str) -> None:
    if fault not in FAULTS:
        raise ValueError(f"{fault!r} is not one of {', '.join(repr(f) for f in FAULTS)}")
    cache.set(SWITCH.format(environment), fault, timeout=None)


def latencies_record(target_group_arn: str, samples: list[tuple[datetime, float]]) -> None:
    """Keeps response times (when, milliseconds) measured on a colour; a single writer, the
    traffic generator (or a test)."""
    key = LATENCIES.format(target_group_arn)
    oldest = (clock.now() - KEEP_FOR).timestamp()
    kept = [s for s in cache.get(key) or [] if s[0] >= oldest]
    kept += [(at.timestamp(), ms) for at, ms in samples]
    cache.set(key, kept[-KEEP_SAMPLES:], timeout=None)


def percentiles(target_group_arn: str, start: datetime, end: datetime) -> dict:
    """p95 and p99 (nearest rank) of the colour's response times between `start` and `end`, as
    CloudWatch's extended statistics would give them; empty without samples."""
    low, high = start.timestamp(), end.timestamp()
    values = sorted(ms for at, ms in cache.get(LATENCIES.format(target_group_arn)) or [] if low <= at <= high)
    if not values:
        return {}
    return {name: values[math.ceil(p * len(values)) - 1] for name, p in (("p95", 0.95), ("p99", 0.99))}
