"""The simulated production's shared state, for the demo and the tests: what each colour (target
group) runs and how it behaves. Kept in the cache, so the web, the workers, the traffic generator
and a test all see the same colours. Only the simulated deployer and telemetry read it."""

from dataclasses import asdict, dataclass, field

from django.core.cache import cache

KEY = "simulation:{}"


@dataclass
class Behaviour:
    """How a colour behaves: healthy or not, its latency percentiles, alarms it sets off."""

    version: str = ""
    healthy: bool = True
    p95_ms: float = 120.0
    p99_ms: float = 250.0
    alarms: list[str] = field(default_factory=list)


def behaviour(target_group_arn: str) -> Behaviour:
    return Behaviour(**(cache.get(KEY.format(target_group_arn)) or {}))


def behave(target_group_arn: str, **changes) -> Behaviour:
    """Changes how a colour behaves (the demo's bad-release switch, a test's failing step)."""
    current = asdict(behaviour(target_group_arn))
    current.update(changes)
    cache.set(KEY.format(target_group_arn), current, timeout=None)
    return Behaviour(**current)
