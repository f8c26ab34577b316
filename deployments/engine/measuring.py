"""What the new colour shows over a step, measured from the outside world and handed to the pure
`judge` with the environment's limits."""

from datetime import datetime

from deployments.judge import Limits, Measured, Verdict, enough_requests, judge
from deployments.models import Deployment, DeploySettings
from deployments.outside import Outside
from deployments.smoke import smoke_test


def measure(
    deployment: Deployment, world: Outside, limits: Limits, *, since: datetime, until: datetime
) -> Measured:
    """Target health, smoke tests, request and 5xx counts, latency percentiles once there are
    requests enough to judge, watched alarms."""
    deploy = deployment.environment.deploy_settings
    target_group = deploy.target_group(deployment.to_colour)
    targets = world.telemetry.target_health(target_group)
    url = deploy.url_of(deployment.to_colour)
    smoke = smoke_test(url, deploy.smoke_checks) if url else []
    counts = world.telemetry.counts(target_group, since, until, 60)
    latency = None
    if enough_requests(counts, limits):
        latency = world.telemetry.percentiles(target_group, since, until, 60)
    firing = world.telemetry.alarms_firing(deploy.alarm_names, target_group) if deploy.alarm_names else None
    return Measured(targets=targets, smoke=smoke, counts=counts, latency=latency, firing=firing)


def limits_of(deploy: DeploySettings) -> Limits:
    return Limits(
        min_requests=deploy.min_requests,
        max_error_rate=deploy.max_error_rate,
        max_p95_ms=deploy.max_p95_ms,
        max_p99_ms=deploy.max_p99_ms,
    )


def judged(deployment: Deployment, world: Outside, *, since: datetime, until: datetime) -> Verdict:
    limits = limits_of(deployment.environment.deploy_settings)
    measured = measure(deployment, world, limits, since=since, until=until)
    return judge(measured, limits, colour=deployment.to_colour)
