"""The staging soak: "All tests passing in Staging for 48+ hours" as a gate computed from what
staging reported about the change's build, never a box someone ticks.

The staging environment is the one that runs the change's source branch. The soak starts when the
build first reached it (again after a failure), needs a passing run since, and opens after the
policy's hours. A failed run ends the soak; the build soaks anew from its next arrival.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from changes.models import StagingRun


@dataclass(frozen=True)
class Soak:
    open: bool
    message: str
    opens_at: datetime | None = None


def soak_of(change, *, now: datetime) -> Soak:
    from deployments.models import Environment

    build, policy = change.build, change.environment.approval_policy
    if not build:
        return Soak(False, "No build named yet: CI names the commit or version that soaks in staging.")
    staging = (
        Environment.objects.filter(branch=change.source_branch).exclude(pk=change.environment_id).first()
    )
    if staging is None:
        return Soak(False, f"No environment runs the {change.source_branch} branch to soak {build} in.")
    start, green, failed_at = None, False, None
    for run in StagingRun.objects.filter(environment=staging, version=build).only("result", "at"):
        if run.result == StagingRun.Result.DEPLOYED and start is None:
            start, green = run.at, False
        elif run.result == StagingRun.Result.RED:
            start, green, failed_at = None, False, run.at
        elif run.result == StagingRun.Result.GREEN and start is not None:
            green = True
    if start is None and failed_at is not None:
        return Soak(
            False,
            f"{build} failed in {staging} at {failed_at:%Y-%m-%d %H:%M} UTC; "
            "it soaks again from its next deployment there.",
        )
    if start is None:
        return Soak(False, f"{build} has not reached {staging} yet.")
    if not green:
        return Soak(
            False, f"{build} reached {staging} at {start:%Y-%m-%d %H:%M} UTC; no passing test run since."
        )
    opens_at = start + timedelta(hours=policy.soak_hours)
    hours = int((now - start).total_seconds() // 3600)
    if now < opens_at:
        return Soak(
            False,
            f"{build} green in {staging} for {hours} h of {policy.soak_hours}; "
            f"the gate opens at {opens_at:%Y-%m-%d %H:%M} UTC.",
            opens_at,
        )
    return Soak(True, f"{build} green in {staging} since {start:%Y-%m-%d %H:%M} UTC ({hours} h).", opens_at)
