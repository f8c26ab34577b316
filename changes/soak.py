"""The staging soak: "All tests passing in Staging for 48+ hours" as a gate computed from what CI
reported about the change's commit, never a box someone ticks, nor a build the requester names.

The commit is the one under review: the head of the change's branch until it deploys, then the
commit its quorum approved; so what soaked is what the release merges. It soaks in the staging
environments (any environment but production and the change's own). The soak starts when the
commit first reached one of them (again after a failure), needs a passing run since, and opens
after the policy's hours. A failed run ends the soak; the commit soaks anew from its next arrival.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from changes.models import StagingRun
from changes.quorum import reviewed_commit


@dataclass(frozen=True)
class Soak:
    open: bool
    message: str
    opens_at: datetime | None = None
    commit: str = ""  # the commit it judged


def soak_of(change, *, now: datetime) -> Soak:
    commit, policy = reviewed_commit(change), change.environment.approval_policy
    if not commit:
        return Soak(False, "The change's branch has not been read yet: its head commit is what soaks.")
    short = commit[:10]
    runs = (
        StagingRun.objects.filter(commit=commit, environment__is_production=False)
        .exclude(environment_id=change.environment_id)
        .select_related("environment")
        .only("result", "at", "environment__name", "environment__display_name")
    )
    start, green, failed_at, where = None, False, None, None
    for run in runs:
        if run.result == StagingRun.Result.DEPLOYED and start is None:
            start, green, where = run.at, False, run.environment
        elif run.result == StagingRun.Result.RED:
            start, green, failed_at, where = None, False, run.at, run.environment
        elif run.result == StagingRun.Result.GREEN and start is not None:
            green = True
    if start is None and failed_at is not None:
        return Soak(
            False,
            f"{short} failed in {where} at {failed_at:%Y-%m-%d %H:%M} UTC; "
            "it soaks again from its next deployment there.",
            commit=commit,
        )
    if start is None:
        return Soak(False, f"{short} has not reached staging yet.", commit=commit)
    if not green:
        return Soak(
            False,
            f"{short} reached {where} at {start:%Y-%m-%d %H:%M} UTC; no passing test run since.",
            commit=commit,
        )
    opens_at = start + timedelta(hours=policy.soak_hours)
    hours = int((now - start).total_seconds() // 3600)
    if now < opens_at:
        return Soak(
            False,
            f"{short} green in {where} for {hours} h of {policy.soak_hours}; "
            f"the gate opens at {opens_at:%Y-%m-%d %H:%M} UTC.",
            opens_at,
            commit,
        )
    return Soak(
        True, f"{short} green in {where} since {start:%Y-%m-%d %H:%M} UTC ({hours} h).", opens_at, commit
    )
