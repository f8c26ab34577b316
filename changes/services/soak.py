"""The staging soak: what CI reports of a commit in staging, and the soak it opens or breaks."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from catalogue.models import Environment
from changes import integrations
from changes.models import COMMIT, ChangeRequest, StagingRun
from changes.rules import ChangeError
from changes.services.base import _locked
from portal import clock
from portal.models import User
from portal.roles import Right, require_right
from portal.services import audit_record


@transaction.atomic
def staging_run_record(
    *,
    actor: User | None,
    environment: Environment,
    commit: str,
    result: str,
    version: str = "",
    url: str = "",
) -> StagingRun:
    """Records what CI reported about a commit in a staging environment (a person's CI token,
    checked for its scope by the caller, or GitHub's signed event when `actor` is None), stamped
    with the portal's time, then brings the soak gate of every open change at that commit up to date."""
    if actor is not None:
        require_right(actor, Right.STAGING_REPORT)
    if result not in StagingRun.Result.values:
        raise ChangeError(f"result: one of {', '.join(StagingRun.Result.values)}.")
    commit = commit.strip().lower()
    try:
        COMMIT(commit)
    except ValidationError:
        raise ChangeError("commit: give the full id of the commit that ran (40 hex digits).") from None
    if environment.is_production:
        raise ChangeError(f"environment: {environment} is deployed by Greenlight itself; it does not soak.")
    run = StagingRun.objects.create(
        environment=environment,
        commit=commit,
        version=(version.strip() or commit[:12])[:100],
        result=result,
        at=clock.now(),
        url=url,
        recorded_by=actor,
    )
    audit_record(
        actor=actor,
        action=f"staging.{result}",
        target=run,
        after={"environment": environment.name, "commit": commit, "version": run.version, "url": url},
    )
    at_commit = ChangeRequest.objects.filter(Q(pull__head_sha=commit) | Q(approved_commit=commit)).open()
    for change in at_commit.distinct():
        soak_check(change=change)
    return run


@transaction.atomic
def staging_run_record_once(
    *, environment: Environment, commit: str, version: str, result: str, url: str
) -> StagingRun | None:
    """Records a report GitHub may deliver more than once (a redelivery, a retry after a timeout):
    a report with the same environment, commit, result and link (the deployment's run, or its
    status) is the same report, recorded the first time only. Returns the run, or None when it was
    recorded already. The environment is locked, so two deliveries at once record it once."""
    Environment.objects.select_for_update().filter(pk=environment.pk).first()
    same = StagingRun.objects.filter(environment=environment, commit=commit.strip().lower(), result=result)
    if url and same.filter(url=url).exists():
        return None
    return staging_run_record(
        actor=None, environment=environment, commit=commit, version=version, result=result, url=url
    )


@transaction.atomic
def soak_check(*, change: ChangeRequest) -> bool:
    """Ticks or unticks the change's staging soak item from staging's reports; True when open."""
    from changes.soak import soak_of

    change = _locked(change)
    soak = soak_of(change, now=clock.now())
    integrations.checklist_prove(
        change=change, integration="staging_soak", evidence=soak.message if soak.open else "", done=soak.open
    )
    return soak.open
