"""The blue-green engine: carries a deployment forward one short step at a time from the state
kept on its row, so any worker can take it up where another stopped (or was killed):

    pre-flight (database snapshot) → release (merge, tag, notes) → deploy to the idle colour and
    wait until its targets are healthy → smoke tests on the idle colour → for each step of the
    plan: shift the weights, bake, judge health, smoke tests, metrics and alarms → at 100 % the
    new colour is live; on a failed judgement, traffic goes back to the old colour by itself.

Every weight change is written as wanted (`desired_weight`) before the load balancer is told and
as confirmed (`applied_weight`) after it was read back; a step that finds them apart asks the load
balancer and makes them agree before anything else. One worker at a time holds a deployment for a
short lease; a worker that dies loses it, and the reconciler hands the deployment to another.
Nothing sleeps: each call returns how long to wait, and the task is scheduled again then.
"""

import logging
import uuid
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from changes import integrations
from changes.choices import ChangeStatus
from deployments import evidence
from deployments.judge import Limits, Measured, Verdict, enough_requests, judge
from deployments.models import Deployment, DeploySettings, Stage
from deployments.outside import Outside, outside_for
from deployments.smoke import smoke_test
from integrations.aws import AwsError
from integrations.deployers import DeployError
from portal import clock, hooks
from portal.services import audit_record, notification_send

D = Deployment.State
logger = logging.getLogger(__name__)
LEASE = timedelta(seconds=30)
# Passing errors (throttling, the network) are retried with backoff this many times in a row.
MAX_ATTEMPTS = 8
HEALTH_POLL_SECONDS = 5
SNAPSHOT_TIMEOUT = timedelta(hours=1)
# AWS saying the listener or rule does not exist: traffic cannot have gone through it.
NOT_THERE = frozenset({"ListenerNotFound", "RuleNotFound", "LoadBalancerNotFound"})


class Refused(Exception):
    """A step that cannot succeed: the deployment stops (and rolls back once traffic may move)."""


def worker_name() -> str:
    return f"worker-{uuid.uuid4().hex[:12]}"


def advance(deployment_id: int, *, owner: str | None = None, outside: Outside | None = None) -> float | None:
    """Carries the deployment as far as it can go now. Returns the seconds until it wants to be
    looked at again, or None when it has ended, is paused, or another worker holds it."""
    owner = owner or worker_name()
    if not _claim(deployment_id, owner):
        return None
    token = _holder.set(owner)
    try:
        for _ in range(50):
            deployment = Deployment.objects.select_related("environment__deploy_settings", "change").get(
                pk=deployment_id
            )
            if deployment.ended_at is not None:
                return None
            wait = _step(deployment, outside)
            if wait is not None:
                return _wait(deployment, wait)
            if not _claim(deployment_id, owner):  # moving on: keep the lease, or stop if it was lost
                return None
        return 0
    except LeaseLost:
        return None
    finally:
        _holder.reset(token)
        Deployment.objects.filter(pk=deployment_id, lease_owner=owner).update(
            lease_until=None, lease_owner=""
        )


PAUSED = -1.0  # a paused deployment waits for resume (or a rollback), which wakes it


def _wait(deployment: Deployment, wait: float) -> float | None:
    """Keeps when to look again; a control that came in meanwhile (resume, promote, rollback)
    makes it now."""
    now = clock.now()
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        controlled = (
            locked.rollback_requested != deployment.rollback_requested
            or locked.promote_requested != deployment.promote_requested
            or locked.paused_at != deployment.paused_at
            or locked.ended_early_by_id != deployment.ended_early_by_id
        )
        if controlled:
            wait = 0.0
        later = timedelta(hours=1) if wait == PAUSED else timedelta(seconds=wait)
        locked.next_run_at = now + later
        locked.save(update_fields=["next_run_at"])
    return None if wait == PAUSED else wait


class IllegalMove(RuntimeError):
    """A move the deployment's map of allowed moves does not have: a bug, never an outside fault."""


class LeaseLost(Exception):
    """Another worker took the deployment over (this one was too slow): this one stops writing."""


class Passing(Exception):
    """A step that may succeed later: waits with backoff, or until `retry_at`."""

    def __init__(self, message: str, retry_at=None):
        super().__init__(message)
        self.retry_at = retry_at


# The worker advancing a deployment in this thread, checked at every write.
_holder: ContextVar[str | None] = ContextVar("deployment_holder", default=None)


def _claim(deployment_id: int, owner: str) -> bool:
    now = clock.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    return bool(
        Deployment.objects.filter(free, pk=deployment_id, ended_at__isnull=True).update(
            lease_until=now + LEASE, lease_owner=owner
        )
    )


def _step(deployment: Deployment, outside: Outside | None) -> float | None:
    """One move; None to go on at once, else the seconds to wait."""
    try:
        deploy = DeploySettings.objects.filter(environment_id=deployment.environment_id).first()
        if deploy is None:
            raise Refused(f"{deployment.environment} has no deploy settings any more.")
        world = outside or outside_for(deploy)
        if deployment.state == D.ROLLING_BACK:
            return _rolling_back(deployment, world)
        if deployment.applied_weight != deployment.desired_weight:
            _reconcile(deployment, world)
            return None
        if deployment.rollback_requested:
            _begin_rollback(deployment, deployment.rollback_reason or "Rollback requested.")
            return None
        if deployment.paused_at is not None:
            return PAUSED
        wait = HANDLERS[deployment.state](deployment, world)
        if deployment.attempts:
            _save(deployment, attempts=0, error="")
        return wait
    except LeaseLost:
        raise
    except (AwsError, DeployError) as error:
        retry_at = getattr(error, "retry_at", None)
        return _trouble(deployment, str(error), transient=error.transient, retry_at=retry_at)
    except Passing as error:
        return _trouble(deployment, str(error), transient=True, retry_at=error.retry_at)
    except Refused as error:
        return _trouble(deployment, str(error), transient=False)
    except Exception as error:  # a fault of ours or of a neighbour: retried, then stopped safely
        logger.exception("deployment %s: step failed", deployment.pk)
        return _trouble(deployment, f"{type(error).__name__}: {error}", transient=True)


def _trouble(deployment: Deployment, message: str, *, transient: bool, retry_at=None) -> float | None:
    """A passing error waits with backoff (a bounded number of times); a lasting one stops the
    deployment: rolled back once the new version may have taken traffic, failed before. A rollback
    never gives up: it keeps trying (and is said to be stuck) with the environment kept locked."""
    rolling_back = deployment.state == D.ROLLING_BACK
    # A release that passed its verification is rolled back by a person, never by trouble watching it.
    watching = deployment.state == D.MONITORING and not _verifying(deployment, clock.now())
    if rolling_back or watching or (transient and deployment.attempts < MAX_ATTEMPTS):
        attempts = min(deployment.attempts + 1, 99)
        _save(deployment, attempts=attempts, error=message)
        if watching and attempts == MAX_ATTEMPTS:
            _alert(
                deployment, "cannot be watched", f"The monitoring cannot check the live release: {message}"
            )
        if retry_at is not None:
            return max((retry_at - clock.now()).total_seconds(), 1)
        return min(2**attempts, 60)
    if deployment.state in (D.PREFLIGHT, D.RELEASING):
        _end(deployment, D.FAILED, ChangeStatus.FAILED, message)
        return None
    _begin_rollback(deployment, message)
    return None


# Bookkeeping: every change of the row is audited in the same transaction.


def _save(deployment: Deployment, *, action: str | None = None, after: dict | None = None, **fields) -> None:
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        holder = _holder.get()
        if holder is not None and (locked.lease_owner != holder or locked.ended_at is not None):
            raise LeaseLost(f"deployment {deployment.pk} is no longer held by {holder}")
        if holder is not None:
            fields.setdefault("lease_until", clock.now() + LEASE)  # each write renews the lease
        moving = "state" in fields and fields["state"] != locked.state
        if moving and not locked.can_transition_to(fields["state"]):
            raise IllegalMove(locked.transition_error(fields["state"]))
        before = {name: getattr(locked, name) for name in fields}
        for name, value in fields.items():
            setattr(locked, name, value)
            setattr(deployment, name, value)
        locked.save(update_fields=list(fields))
        if action:
            audit_record(
                actor=None,
                action=action,
                target=locked,
                before=_plain(before),
                after={**_plain(fields), **(after or {})},
            )
    if moving:
        logger.info(
            "deployment %s of %s: %s -> %s%s",
            deployment.pk,
            deployment.change_id,
            before["state"],
            fields["state"],
            f" ({after['note']})" if after and after.get("note") else "",
        )


def _plain(values: dict) -> dict:
    """What an audit event keeps of the fields written (not the lease's bookkeeping)."""
    return {
        k: v.isoformat() if hasattr(v, "isoformat") else v
        for k, v in values.items()
        if k not in ("lease_until", "lease_owner")
    }


def _stage(deployment: Deployment, kind: str, name: str, weight: int | None = None) -> Stage:
    """The running stage of this kind and weight, opened when there is none."""
    stage = (
        Stage.objects.filter(deployment=deployment, kind=kind, weight=weight, state=Stage.State.RUNNING)
        .order_by("-id")
        .first()
    )
    if stage is None:
        stage = Stage.objects.create(
            deployment=deployment, kind=kind, name=name, weight=weight, started_at=clock.now()
        )
    return stage


def _record(stage: Stage, checks: list[dict], *, replace: bool = False) -> None:
    """Keeps the checks' evidence on the stage, stamped; `replace` updates checks of the same name
    (a poll) instead of adding another round (a judgement)."""
    at = clock.now().isoformat()
    stamped = [{**check, "at": at} for check in checks]
    if replace:
        names = {c["name"] for c in stamped}
        stage.checks = [c for c in stage.checks if c["name"] not in names] + stamped
    else:
        stage.checks = stage.checks + stamped
    stage.save(update_fields=["checks"])


def _close(stage: Stage, state: str, message: str = "") -> None:
    stage.state, stage.ended_at, stage.message = state, clock.now(), message
    stage.save(update_fields=["state", "ended_at", "message"])


def _pass_on(stage: Stage, deployment: Deployment, state: str, **fields) -> None:
    """The stage passed and the deployment moves on, at once: a stop between the two would run
    the stage again (and ask the deployer twice)."""
    with transaction.atomic():
        _close(stage, Stage.State.PASSED)
        _move(deployment, state, **fields)


def _move(deployment: Deployment, state: str, note: str = "", **fields) -> None:
    now = clock.now()
    fields = {"state_since": now, "next_run_at": now, **fields}
    _save(
        deployment, action="deployment.state", after={"note": note} if note else None, state=state, **fields
    )


# The weights.


def _set_weight(deployment: Deployment, world: Outside, weight: int) -> None:
    """Wanted, told, read back, confirmed: a crash anywhere in between is found by `_reconcile`."""
    deploy = deployment.environment.deploy_settings
    _save(deployment, action="deployment.weights", desired_weight=weight)
    world.aws.set_weights(
        {
            deploy.target_group(deployment.to_colour): weight,
            deploy.target_group(deployment.from_colour): 100 - weight,
        },
        listener_arn=deploy.listener_arn,
        rule_arn=deploy.rule_arn,
    )
    _confirm(deployment, world)


def _confirm(deployment: Deployment, world: Outside) -> int:
    deploy = deployment.environment.deploy_settings
    actual = world.aws.weights(listener_arn=deploy.listener_arn, rule_arn=deploy.rule_arn)
    applied = actual.get(deploy.target_group(deployment.to_colour), 0)
    if applied != deployment.applied_weight:
        _save(deployment, action="deployment.weights_confirmed", applied_weight=applied)
    return applied


def _weights_held(deployment: Deployment, world: Outside) -> bool:
    """Whether the load balancer still has the weight confirmed, read back before each verdict: a
    call of a worker that lost its lease (the clock jumped, a request stalled) may land after
    another worker moved the weights on. When it does not, the row takes what the load balancer
    has, and the next pass (`_reconcile`) puts the wanted weight back before anything is judged."""
    return _confirm(deployment, world) == deployment.desired_weight


def _reconcile(deployment: Deployment, world: Outside) -> None:
    """The row wants one weight and confirmed another (a worker stopped between the two): ask the
    load balancer, and tell it again when it does not have what is wanted."""
    if _confirm(deployment, world) != deployment.desired_weight:
        _set_weight(deployment, world, deployment.desired_weight)


# The stages.


def _preflight(deployment: Deployment, world: Outside) -> float | None:
    deploy = deployment.environment.deploy_settings
    stage = _stage(deployment, Stage.Kind.PREFLIGHT, "Pre-flight")
    weights = world.aws.weights(listener_arn=deploy.listener_arn, rule_arn=deploy.rule_arn)
    on_idle = weights.get(deploy.target_group(deployment.to_colour), 0)
    _record(
        stage,
        [
            Stage.evidence(
                "Idle colour", on_idle == 0, f"{on_idle} %", 0, f"traffic on {deployment.to_colour} now"
            )
        ],
        replace=True,
    )
    live = world.telemetry.target_health(deploy.target_group(deployment.from_colour))
    healthy = sum(1 for t in live if t[1] == "healthy")
    _record(
        stage,
        [
            Stage.evidence(
                "Live colour health",
                bool(live) and healthy == len(live),
                f"{healthy}/{len(live)}",
                detail=f"targets of {deployment.from_colour} healthy",
            )
        ],
        replace=True,
    )
    if on_idle:
        _close(stage, Stage.State.FAILED, f"{deployment.to_colour} takes {on_idle} % of the traffic")
        raise Refused(
            f"The load balancer sends {on_idle} % of the traffic to {deployment.to_colour}, the colour this "
            "deployment would replace: put all of it on the live colour first."
        )
    if not deploy.database_instance:
        _record(
            stage,
            [Stage.evidence("Database snapshot", True, detail="no database configured")],
        )
    else:
        snapshot_id = (
            deployment.snapshot_id or f"greenlight-{deployment.change.number.lower()}-{deployment.pk}"
        )
        if not deployment.snapshot_id:
            _save(deployment, snapshot_id=snapshot_id)
        status = world.aws.snapshot(deploy.database_instance, snapshot_id)
        done = status == "available"
        _record(
            stage,
            [
                Stage.evidence(
                    "Database snapshot", done, status, detail=f"{snapshot_id} of {deploy.database_instance}"
                )
            ],
            replace=True,
        )
        if status == "failed":
            raise Refused(f"The snapshot {snapshot_id} of {deploy.database_instance} failed.")
        if not done:
            if clock.now() - deployment.state_since > SNAPSHOT_TIMEOUT:
                raise Refused(f"The snapshot {snapshot_id} is still {status} after an hour.")
            return 15
        with transaction.atomic():
            integrations.checklist_prove(
                change=deployment.change,
                integration="backup",
                evidence=f"RDS snapshot {snapshot_id} of {deploy.database_instance}, available.",
            )
    _pass_on(stage, deployment, D.RELEASING)
    return None


def _release(deployment: Deployment, world: Outside) -> float | None:
    from changes import custody, releases
    from integrations import scm

    stage = _stage(deployment, Stage.Kind.RELEASE, "Release")
    try:
        release = releases.release_cut(change=deployment.change, scm=scm.repository())
    except releases.RepositoryRefused as refused:
        _record(
            stage,
            [Stage.evidence("Release", False, detail=refused.messages[0])],
            replace=True,
        )
        if refused.transient and deployment.attempts < MAX_ATTEMPTS:
            raise Passing(refused.messages[0], refused.retry_at) from None
        _close(stage, Stage.State.FAILED, refused.messages[0])
        raise Refused(refused.messages[0]) from None
    except releases.ChangeError as refused:  # the version it would tag, refused
        _close(stage, Stage.State.FAILED, refused.messages[0])
        raise Refused(refused.messages[0]) from None
    except scm.ScmError as refused:  # no repository configured
        _close(stage, Stage.State.FAILED, str(refused))
        raise Refused(str(refused)) from None
    _save(deployment, version=release.version)  # what it puts on the colour: judged in the chain
    try:
        links = custody.chain(deployment.change, repository=scm.repository())
    except scm.ScmError:  # out of reach for now: judged on what the release recorded
        links = custody.chain(deployment.change)
    _save(deployment, action="deployment.custody", custody=links, custody_checked_at=clock.now())
    differs = custody.broken(links)
    _record(
        stage,
        [
            Stage.evidence("Release", True, release.version, detail=release.url or release.merge_commit[:10]),
            Stage.evidence(
                "Chain of custody", not differs, detail="; ".join(differs) or "every link matches"
            ),
        ],
        replace=True,
    )
    if differs:
        _close(stage, Stage.State.FAILED, "; ".join(differs))
        raise Refused(f"Chain of custody: {'; '.join(differs)}")
    _pass_on(stage, deployment, D.DEPLOYING, version=release.version)
    return None


def _deploy(deployment: Deployment, world: Outside) -> float | None:
    deploy = deployment.environment.deploy_settings
    target_group = deploy.target_group(deployment.to_colour)
    stage = _stage(deployment, Stage.Kind.DEPLOY, f"Deploy {deployment.version} to {deployment.to_colour}")
    if not _deployed(deployment, world, stage, target_group):
        detail = f"{deployment.deployer_ref} is still running"
        limit = deploy.deployer_timeout_seconds
        return _deploy_waits(
            deployment, stage, "was not deployed", detail, since=deployment.state_since, limit=limit
        )
    targets = world.telemetry.target_health(target_group)
    healthy = [t for t in targets if t[1] == "healthy"]
    ok = bool(targets) and len(healthy) == len(targets)
    detail = (
        "; ".join(f"{t[0]} {t[1]}{f' ({t[2]})' if t[2] else ''}" for t in targets) or "no targets registered"
    )
    _record(
        stage,
        [Stage.evidence("Target health", ok, f"{len(healthy)}/{len(targets)}", detail=detail)],
        replace=True,
    )
    if ok:
        _pass_on(stage, deployment, D.SMOKE)
        return None
    # The health timeout counts from when the deployer said it was done (or was asked, unfollowed).
    done_at = max((c["at"] for c in stage.checks if c["name"] == "Deployer" and c["ok"]), default=None)
    since = datetime.fromisoformat(done_at) if done_at else deployment.state_since
    limit = deploy.health_timeout_seconds
    return _deploy_waits(deployment, stage, "did not become healthy", detail, since=since, limit=limit)


def _deployed(deployment: Deployment, world: Outside, stage: Stage, target_group: str) -> bool:
    """Asks the deployer once, then whether what it started (a workflow run) is done: False while
    it runs; its failure fails the stage."""
    if not any(c["name"] == "Deployer" for c in stage.checks):
        ref = world.deployer.start(
            version=deployment.version,
            colour=deployment.to_colour,
            target_group_arn=target_group,
            environment=deployment.environment.name,
            change=deployment.change.number,
        )
        asked = (
            f"{ref} deploys to {deployment.to_colour}"
            if ref
            else f"asked to deploy to {deployment.to_colour}"
        )
        with transaction.atomic():
            _save(deployment, deployer_ref=ref)
            _record(
                stage, [Stage.evidence("Deployer", None if ref else True, deployment.version, detail=asked)]
            )
    if not deployment.deployer_ref:
        return True
    try:
        done = world.deployer.finished(deployment.deployer_ref)
    except DeployError as error:
        if not error.transient:
            failed = Stage.evidence("Deployer", False, deployment.version, detail=str(error))
            _record(stage, [failed], replace=True)
            _close(stage, Stage.State.FAILED, str(error))
        raise
    if done and not any(c["name"] == "Deployer" and c["ok"] for c in stage.checks):
        succeeded = f"{deployment.deployer_ref} succeeded"
        _record(stage, [Stage.evidence("Deployer", True, deployment.version, detail=succeeded)], replace=True)
    return done


def _deploy_waits(
    deployment: Deployment, stage: Stage, what: str, detail: str, *, since, limit: int
) -> float:
    """The idle colour is not ready yet: looked at again soon, refused after `limit` seconds."""
    if (clock.now() - since).total_seconds() > limit:
        _close(stage, Stage.State.FAILED, f"{what} in {limit} s")
        raise Refused(f"{deployment.to_colour.title()} {what} in {limit} s: {detail}.")
    return HEALTH_POLL_SECONDS


def _smoke(deployment: Deployment, world: Outside) -> float | None:
    deploy = deployment.environment.deploy_settings
    stage = _stage(deployment, Stage.Kind.SMOKE, f"Smoke tests on {deployment.to_colour} (0 %)", weight=0)
    url = deploy.url_of(deployment.to_colour)
    if not url:
        _close(stage, Stage.State.FAILED, "no address")
        raise Refused(
            f"There is no address to smoke-test {deployment.to_colour}: set its URL in the deploy settings."
        )
    results = smoke_test(url, deploy.smoke_checks)
    _record(stage, results)
    failed = [r for r in results if not r["ok"]]
    if failed:
        words = "; ".join(f"{r['name']}: {r['detail']}" for r in failed)
        _close(stage, Stage.State.FAILED, words)
        raise Refused(f"Smoke tests failed on {deployment.to_colour}: {words}.")
    _pass_on(stage, deployment, D.SHIFTING, step=0)
    return None


def _shift(deployment: Deployment, world: Outside) -> float | None:
    weight = deployment.plan[deployment.step]
    stage = _stage(deployment, Stage.Kind.TRAFFIC, f"{weight} % on {deployment.to_colour}", weight=weight)
    now = clock.now()
    if deployment.applied_weight != weight:
        _set_weight(deployment, world, weight)
        _save(deployment, state_since=now, next_run_at=now + timedelta(seconds=deployment.analysis_seconds))
        return deployment.analysis_seconds
    if now < deployment.next_run_at and not deployment.promote_requested:
        return (deployment.next_run_at - now).total_seconds()
    if not _weights_held(deployment, world):
        return None
    verdict = _judged(deployment, world, since=deployment.state_since, until=now)
    _record(stage, verdict.checks)
    if verdict.failed:
        _close(stage, Stage.State.FAILED, verdict.failed)
        raise Refused(f"At {weight} %: {verdict.failed}.")
    baked = (now - deployment.state_since).total_seconds() >= deployment.bake_seconds
    if not (baked or deployment.promote_requested):
        remaining = deployment.bake_seconds - (now - deployment.state_since).total_seconds()
        wait = min(deployment.analysis_seconds, max(remaining, 1))
        _save(deployment, next_run_at=now + timedelta(seconds=wait))
        return wait
    if verdict.inconclusive and not deployment.promote_requested:
        _close(stage, Stage.State.STOPPED, verdict.inconclusive)
        _save(deployment, action="deployment.pause", paused_at=now, error=verdict.inconclusive)
        _alert(
            deployment,
            f"paused at {weight} %",
            f"{verdict.inconclusive} Resume to go on, promote, or roll back.",
        )
        return PAUSED
    with transaction.atomic():
        _close(stage, Stage.State.PASSED, "promoted" if deployment.promote_requested and not baked else "")
        if weight == 100:
            _go_live(deployment)
        else:
            _move(deployment, D.SHIFTING, step=deployment.step + 1, promote_requested=False)
    return None


def measure(deployment: Deployment, world: Outside, limits: Limits, *, since, until) -> Measured:
    """What the new colour shows over the step so far: target health, smoke tests, request and
    5xx counts, latency percentiles once there are requests enough to judge, watched alarms."""
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


def _judged(deployment: Deployment, world: Outside, *, since, until) -> Verdict:
    limits = limits_of(deployment.environment.deploy_settings)
    measured = measure(deployment, world, limits, since=since, until=until)
    return judge(measured, limits, colour=deployment.to_colour)


def _live(deployment: Deployment, colour: str) -> None:
    """The environment's live colour, audited (in the caller's transaction)."""
    locked = DeploySettings.objects.select_for_update().get(environment_id=deployment.environment_id)
    if locked.live_colour == colour:
        return
    audit_record(
        actor=None,
        action="environment.live_colour",
        target=deployment.environment,
        before={"live_colour": locked.live_colour},
        after={"live_colour": colour, "version": deployment.version},
    )
    locked.live_colour = colour
    locked.save(update_fields=["live_colour"])


def _go_live(deployment: Deployment) -> None:
    """All traffic is on the new colour: it is live, and watched (the old colour kept warm) until
    the monitoring passes; unless a rollback was asked for meanwhile (it then goes on)."""
    from changes.services import change_move

    deploy = deployment.environment.deploy_settings
    with transaction.atomic():
        if Deployment.objects.select_for_update().filter(pk=deployment.pk, rollback_requested=True).exists():
            return
        _live(deployment, deployment.to_colour)
        now = clock.now()
        note = (
            f"{deployment.version} is live on {deployment.to_colour}; monitoring until it has proved itself."
        )
        _move(
            deployment,
            D.MONITORING,
            note=note,
            live_at=now,
            monitor_until=now + timedelta(seconds=deploy.verify_seconds + deploy.monitor_seconds),
            next_run_at=now + timedelta(seconds=min(deploy.analysis_seconds, deploy.verify_seconds or 1)),
        )
        change_move(change=deployment.change, status=ChangeStatus.VERIFYING, actor=None, note=note)
        evidence.prove_during(deployment)


def _monitor(deployment: Deployment, world: Outside) -> float | None:
    """After 100 %: the immediate verification (a failure rolls back by itself), then the
    short-term monitoring (a regression is told, with a rollback one click away), each a check of
    the live colour every interval, on the beat's clock rather than one long countdown. It passes
    by itself at `monitor_until` when nothing regressed, or when a release manager ends it; a
    regressed release past its time waits for a person, unchecked."""
    deploy = deployment.environment.deploy_settings
    now = clock.now()
    verify_end = deployment.live_at + timedelta(seconds=deploy.verify_seconds)
    if deployment.ended_early_by_id:
        _complete(deployment)
        return None
    if now < deployment.next_run_at:
        return (deployment.next_run_at - now).total_seconds()
    if now >= deployment.monitor_until and deployment.regressed_at:  # a person rolls back, or ends it
        _save(deployment, next_run_at=now + timedelta(seconds=deploy.monitor_interval_seconds))
        return deploy.monitor_interval_seconds
    verifying = _verifying(deployment, deployment.state_since)
    kind, name = (
        (Stage.Kind.VERIFY, "Immediate verification") if verifying else (Stage.Kind.MONITOR, "Monitoring")
    )
    if not _weights_held(deployment, world):
        return None
    stage = _stage(deployment, kind, f"{name} of {deployment.version} on {deployment.to_colour}", weight=100)
    verdict = _judged(deployment, world, since=deployment.state_since, until=now)
    _record(stage, verdict.checks)
    if verdict.failed and verifying:
        _close(stage, Stage.State.FAILED, verdict.failed)
        raise Refused(f"Immediate verification at 100 %: {verdict.failed}.")
    if verdict.failed and not deployment.regressed_at:
        _regressed(deployment, verdict.failed)
    if now >= verify_end:  # its last round judged: the verification is over
        _verified(deployment)
    if now >= deployment.monitor_until and not deployment.regressed_at:  # its last round judged too
        _complete(deployment)
        return None
    # Within the verification a round lands on its end, so all of it is judged as verification.
    if now < verify_end:
        wait = min(deploy.analysis_seconds, (verify_end - now).total_seconds())
    else:
        wait = min(deploy.monitor_interval_seconds, (deployment.monitor_until - now).total_seconds())
    wait = max(wait, 1)
    _save(deployment, state_since=now, next_run_at=now + timedelta(seconds=wait))
    return wait


def _verifying(deployment: Deployment, moment) -> bool:
    """Whether `moment` (a round's start) falls in the live release's immediate verification."""
    if deployment.live_at is None:
        return False
    deploy = deployment.environment.deploy_settings
    return moment < deployment.live_at + timedelta(seconds=deploy.verify_seconds)


def _verified(deployment: Deployment) -> None:
    """The immediate verification's time is over without a failure: its stage passed, unless no
    round could judge the metrics (too little traffic), which is said rather than passed."""
    running = Stage.objects.filter(deployment=deployment, kind=Stage.Kind.VERIFY, state=Stage.State.RUNNING)
    for stage in running:
        if any(c["name"] == "5xx error rate" for c in stage.checks):
            _close(stage, Stage.State.PASSED)
            continue
        words = "Too little traffic reached the live release to judge its metrics during the verification."
        with transaction.atomic():
            _close(stage, Stage.State.STOPPED, words)
            _alert(
                deployment, "was not verified", f"{words} It stays live and is monitored: watch it closely."
            )


def _regressed(deployment: Deployment, failed: str) -> None:
    """A regression while monitoring: kept on the row (the monitoring no longer passes by
    itself), and told to the release manager and the stakeholders with the way to roll back."""
    from changes.services import change_notify

    now = clock.now()
    words = f"Regression on {deployment.to_colour} ({deployment.version}) while monitoring: {failed}."
    body = f"{words} Roll back in one click, the old colour is kept warm: {deployment.get_absolute_url()}"
    with transaction.atomic():
        _save(
            deployment,
            action="deployment.regressed",
            after={"note": words},
            regression=words,
            regressed_at=now,
        )
        _alert(deployment, "regressed", body, people=[deployment.started_by])
        # The requester, the stakeholders and their channels.
        change_notify(
            deployment.change, f"{deployment.change.number} regressed in {deployment.environment}", body
        )


def _complete(deployment: Deployment) -> None:
    """The monitoring passed (or was ended early): the change is completed, its After items
    proved by the evidence, the report kept, the environment unlocked; unless a rollback was asked
    for meanwhile (it then goes on)."""
    if deployment.ended_early_by_id:
        note = f"Monitoring ended early by {deployment.ended_early_by}: {deployment.ended_early_reason}"
    else:
        note = f"{deployment.version} passed its monitoring on {deployment.to_colour}."
    with transaction.atomic():
        if Deployment.objects.select_for_update().filter(pk=deployment.pk, rollback_requested=True).exists():
            return
        for stage in Stage.objects.filter(deployment=deployment, state=Stage.State.RUNNING):
            _close(stage, Stage.State.PASSED, "ended early" if deployment.ended_early_by_id else "")
        evidence.prove_after(deployment)
        _save(deployment, report=evidence.report(deployment))
        _end(deployment, D.SUCCEEDED, ChangeStatus.COMPLETED, note)


def _end(deployment: Deployment, state: str, change_status: str, note: str) -> None:
    """The deployment ends, its change with it; one that rolled back by itself after users reached
    the new colour opens a P1 incident linked to it (in the same transaction). One stopped before
    any traffic moved is told to the alert channel, not paged."""
    from changes.services import change_move

    with transaction.atomic():
        took_traffic = Stage.objects.filter(deployment=deployment, kind=Stage.Kind.TRAFFIC).exists()
        if state == D.ROLLED_BACK and deployment.rollback_by_id is None and took_traffic:
            told = hooks.deployment_rolled_back.send(deployment=deployment)
            note = " ".join([note, *(sentence for sentence in told if sentence)])
        now = clock.now()
        _save(
            deployment,
            action="deployment.state",
            after={"note": note},
            state=state,
            state_since=now,
            next_run_at=now,
            ended_at=now,
            error="" if state == D.SUCCEEDED else note,
            lease_until=None,
            lease_owner="",
        )
        change_move(change=deployment.change, status=change_status, actor=None, note=note)
    if state != D.SUCCEEDED:
        _alert(deployment, state.replace("_", " "), note)


def _begin_rollback(deployment: Deployment, reason: str) -> None:
    for stage in Stage.objects.filter(deployment=deployment, state=Stage.State.RUNNING):
        _close(stage, Stage.State.STOPPED, "stopped by the rollback")
    _save(deployment, attempts=0)
    _move(
        deployment,
        D.ROLLING_BACK,
        note=reason,
        rollback_reason=reason,
        rollback_requested=True,
        paused_at=None,
    )


def _rolling_back(deployment: Deployment, world: Outside) -> float | None:
    stage = _stage(deployment, Stage.Kind.ROLLBACK, f"Rollback to {deployment.from_colour}", weight=0)
    try:
        if deployment.applied_weight != 0 or deployment.desired_weight != 0:
            _set_weight(deployment, world, 0)
    except AwsError as error:
        if error.code not in NOT_THERE or deployment.applied_weight != 0:
            raise
        # The listener (or rule) is not there: it never took traffic to the new colour.
        _save(deployment, action="deployment.weights", desired_weight=0)
    _record(
        stage,
        [
            Stage.evidence(
                "Traffic",
                True,
                f"{deployment.from_colour} 100 %, {deployment.to_colour} 0 %",
                detail="all traffic on the old colour",
            )
        ],
    )
    _close(stage, Stage.State.PASSED)
    with transaction.atomic():
        _live(deployment, deployment.from_colour)  # when it is rolled back after it went live
    if deployment.revert_requested and deployment.rollback_by is not None:
        _revert(deployment, stage)
    _end(deployment, D.ROLLED_BACK, ChangeStatus.ROLLED_BACK, f"Rolled back: {deployment.rollback_reason}")
    return None


def _revert(deployment: Deployment, stage: Stage) -> None:
    """The code half of the rollback, asked for with it: its failure is told, not a reason to
    leave the traffic where it is."""
    from changes import releases
    from integrations import scm

    try:
        reverted = releases.release_revert(
            actor=deployment.rollback_by, change=deployment.change, scm=scm.repository()
        )
        _record(stage, [Stage.evidence("Code revert", True, reverted.commit[:10], detail=reverted.url)])
    except (releases.ChangeError, scm.ScmError) as refused:
        words = refused.messages[0] if hasattr(refused, "messages") else str(refused)
        _record(stage, [Stage.evidence("Code revert", False, detail=words)])


def _alert(deployment: Deployment, what: str, body: str, *, people=None) -> None:
    """Tells the environment's alert channel and, by e-mail, `people` (the requester unless named)."""
    deploy = deployment.environment.deploy_settings
    subject = f"{deployment.change.number} {what} in {deployment.environment}"
    notification_send(channel="slack", recipient=deploy.alert_channel, subject=subject, body=body)
    people = [deployment.change.requester] if people is None else people
    emails = {p.email for p in people if p is not None and p.email}
    for email in sorted(emails):
        notification_send(channel="email", recipient=email, subject=subject, body=body)


# A running deployment this late on its next look, or paused this long, is said to be stuck.
STUCK_AFTER = timedelta(minutes=10)
PAUSED_TOO_LONG = timedelta(hours=1)
ALERT_EVERY = timedelta(hours=1)


def stuck_alerts() -> list[int]:
    """Tells the environment's alert channel and the requester about each deployment that makes no
    progress (overdue, or paused for long), at most once an hour each; returns their ids."""
    now = clock.now()
    stuck = Deployment.objects.filter(ended_at__isnull=True).filter(
        Q(paused_at__isnull=True, next_run_at__lt=now - STUCK_AFTER)
        | Q(paused_at__lt=now - PAUSED_TOO_LONG)
        | Q(state=D.ROLLING_BACK, state_since__lt=now - STUCK_AFTER)
        | Q(state=D.MONITORING, regressed_at__isnull=False, monitor_until__lt=now - PAUSED_TOO_LONG)
    )
    stuck = stuck.filter(Q(alerted_at__isnull=True) | Q(alerted_at__lt=now - ALERT_EVERY))
    told = []
    for deployment in stuck.select_related("environment__deploy_settings", "change__requester"):
        try:
            told.append(_tell_stuck(deployment, now))
        except Exception:  # one deployment's trouble must not silence the others
            logger.exception("deployment %s: could not say it is stuck", deployment.pk)
    return told


def _tell_stuck(deployment: Deployment, now) -> int:
    if deployment.paused_at is not None:
        since, why = deployment.paused_at, "has been paused"
    elif deployment.state == D.ROLLING_BACK:
        since, why = deployment.state_since, "has been rolling back"
    elif deployment.regressed_at is not None:
        since, why = (
            deployment.monitor_until,
            "has waited with a regression (roll it back, or end the monitoring)",
        )
    else:
        since, why = deployment.next_run_at, "has made no progress"
    minutes = int((now - since).total_seconds() // 60)
    state = deployment.get_state_display().lower()
    where = f"{state}, {deployment.applied_weight} % on {deployment.to_colour}"
    body = f"Deployment {deployment.pk} ({where}) {why} for {minutes} minutes. {deployment.error}".strip()
    with transaction.atomic():
        _save(deployment, action="deployment.stuck", after={"note": body}, alerted_at=now)
        _alert(deployment, "is stuck", body)
    return deployment.pk


HANDLERS = {
    D.PREFLIGHT: _preflight,
    D.RELEASING: _release,
    D.DEPLOYING: _deploy,
    D.SMOKE: _smoke,
    D.SHIFTING: _shift,
    D.MONITORING: _monitor,
}
