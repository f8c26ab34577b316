"""The stages a deployment passes before it is live: pre-flight (the live colour healthy, the idle
one empty, a database snapshot), the release (merge, tag, the chain of custody), the deploy to the
idle colour until its targets are healthy, smoke tests on it, and the traffic steps of the plan,
each baked and judged."""

from datetime import datetime, timedelta

from django.db import transaction

from changes import custody, integrations, releases
from changes.services import ChangeError
from deployments.engine.alerts import alert
from deployments.engine.measuring import judged
from deployments.engine.monitoring import go_live
from deployments.engine.records import (
    MAX_ATTEMPTS,
    PAUSED,
    Passing,
    Refused,
    close,
    move,
    open_stage,
    pass_on,
    record,
    save,
)
from deployments.engine.traffic import set_weight, weights_held
from deployments.judge import CheckName
from deployments.models import Deployment, Stage
from deployments.outside import Outside
from deployments.smoke import smoke_test
from integrations import scm
from integrations.deployers import DeployError
from portal import clock

D = Deployment.State
HEALTH_POLL_SECONDS = 5
SNAPSHOT_TIMEOUT = timedelta(hours=1)


def preflight(deployment: Deployment, world: Outside) -> float | None:
    deploy = deployment.environment.deploy_settings
    stage = open_stage(deployment, Stage.Kind.PREFLIGHT, "Pre-flight")
    weights = world.aws.weights(listener_arn=deploy.listener_arn, rule_arn=deploy.rule_arn)
    on_idle = weights.get(deploy.target_group(deployment.to_colour), 0)
    record(
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
    record(
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
        close(stage, Stage.State.FAILED, f"{deployment.to_colour} takes {on_idle} % of the traffic")
        raise Refused(
            f"The load balancer sends {on_idle} % of the traffic to {deployment.to_colour}, the colour this "
            "deployment would replace: put all of it on the live colour first."
        )
    if not deploy.database_instance:
        record(
            stage,
            [Stage.evidence("Database snapshot", True, detail="no database configured")],
        )
    else:
        snapshot_id = (
            deployment.snapshot_id or f"greenlight-{deployment.change.number.lower()}-{deployment.pk}"
        )
        if not deployment.snapshot_id:
            save(deployment, snapshot_id=snapshot_id)
        status = world.aws.snapshot(deploy.database_instance, snapshot_id)
        done = status == "available"
        record(
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
    pass_on(stage, deployment, D.RELEASING)
    return None


def releasing(deployment: Deployment, world: Outside) -> float | None:
    stage = open_stage(deployment, Stage.Kind.RELEASE, "Release")
    try:
        release = releases.release_cut(change=deployment.change, scm=scm.repository())
    except releases.RepositoryRefused as refused:
        record(
            stage,
            [Stage.evidence("Release", False, detail=refused.messages[0])],
            replace=True,
        )
        if refused.transient and deployment.attempts < MAX_ATTEMPTS:
            raise Passing(refused.messages[0], refused.retry_at) from None
        close(stage, Stage.State.FAILED, refused.messages[0])
        raise Refused(refused.messages[0]) from None
    except ChangeError as refused:  # the version it would tag, refused
        close(stage, Stage.State.FAILED, refused.messages[0])
        raise Refused(refused.messages[0]) from None
    except scm.ScmError as refused:  # no repository configured
        close(stage, Stage.State.FAILED, str(refused))
        raise Refused(str(refused)) from None
    save(deployment, version=release.version)  # what it puts on the colour: judged in the chain
    try:
        links = custody.chain(deployment.change, repository=scm.repository())
    except scm.ScmError:  # out of reach for now: judged on what the release recorded
        links = custody.chain(deployment.change)
    save(deployment, action="deployment.custody", custody=links, custody_checked_at=clock.now())
    differs = custody.broken(links)
    record(
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
        close(stage, Stage.State.FAILED, "; ".join(differs))
        raise Refused(f"Chain of custody: {'; '.join(differs)}")
    pass_on(stage, deployment, D.DEPLOYING, version=release.version)
    return None


def deploying(deployment: Deployment, world: Outside) -> float | None:
    deploy = deployment.environment.deploy_settings
    target_group = deploy.target_group(deployment.to_colour)
    stage = open_stage(
        deployment, Stage.Kind.DEPLOY, f"Deploy {deployment.version} to {deployment.to_colour}"
    )
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
    record(
        stage,
        [Stage.evidence(CheckName.TARGET_HEALTH, ok, f"{len(healthy)}/{len(targets)}", detail=detail)],
        replace=True,
    )
    if ok:
        pass_on(stage, deployment, D.SMOKE)
        return None
    # The health timeout counts from when the deployer said it was done (or was asked, unfollowed).
    done_at = max(
        (c["at"] for c in stage.checks if c["name"] == CheckName.DEPLOYER and c["ok"]), default=None
    )
    since = datetime.fromisoformat(done_at) if done_at else deployment.state_since
    limit = deploy.health_timeout_seconds
    return _deploy_waits(deployment, stage, "did not become healthy", detail, since=since, limit=limit)


def _deployed(deployment: Deployment, world: Outside, stage: Stage, target_group: str) -> bool:
    """Asks the deployer once, then whether what it started (a workflow run) is done: False while
    it runs; its failure fails the stage."""
    if not any(c["name"] == CheckName.DEPLOYER for c in stage.checks):
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
            save(deployment, deployer_ref=ref)
            record(
                stage,
                [Stage.evidence(CheckName.DEPLOYER, None if ref else True, deployment.version, detail=asked)],
            )
    if not deployment.deployer_ref:
        return True
    try:
        done = world.deployer.finished(deployment.deployer_ref)
    except DeployError as error:
        if not error.transient:
            failed = Stage.evidence(CheckName.DEPLOYER, False, deployment.version, detail=str(error))
            record(stage, [failed], replace=True)
            close(stage, Stage.State.FAILED, str(error))
        raise
    if done and not any(c["name"] == CheckName.DEPLOYER and c["ok"] for c in stage.checks):
        succeeded = f"{deployment.deployer_ref} succeeded"
        record(
            stage,
            [Stage.evidence(CheckName.DEPLOYER, True, deployment.version, detail=succeeded)],
            replace=True,
        )
    return done


def _deploy_waits(
    deployment: Deployment, stage: Stage, what: str, detail: str, *, since: datetime, limit: int
) -> float:
    """The idle colour is not ready yet: looked at again soon, refused after `limit` seconds."""
    if (clock.now() - since).total_seconds() > limit:
        close(stage, Stage.State.FAILED, f"{what} in {limit} s")
        raise Refused(f"{deployment.to_colour.title()} {what} in {limit} s: {detail}.")
    return HEALTH_POLL_SECONDS


def smoke_testing(deployment: Deployment, world: Outside) -> float | None:
    deploy = deployment.environment.deploy_settings
    stage = open_stage(deployment, Stage.Kind.SMOKE, f"Smoke tests on {deployment.to_colour} (0 %)", weight=0)
    url = deploy.url_of(deployment.to_colour)
    if not url:
        close(stage, Stage.State.FAILED, "no address")
        raise Refused(
            f"There is no address to smoke-test {deployment.to_colour}: set its URL in the deploy settings."
        )
    results = smoke_test(url, deploy.smoke_checks)
    record(stage, results)
    failed = [r for r in results if not r["ok"]]
    if failed:
        words = "; ".join(f"{r['name']}: {r['detail']}" for r in failed)
        close(stage, Stage.State.FAILED, words)
        raise Refused(f"Smoke tests failed on {deployment.to_colour}: {words}.")
    pass_on(stage, deployment, D.SHIFTING, step=0)
    return None


def shifting(deployment: Deployment, world: Outside) -> float | None:
    weight = deployment.plan[deployment.step]
    stage = open_stage(deployment, Stage.Kind.TRAFFIC, f"{weight} % on {deployment.to_colour}", weight=weight)
    now = clock.now()
    if deployment.applied_weight != weight:
        set_weight(deployment, world, weight)
        save(deployment, state_since=now, next_run_at=now + timedelta(seconds=deployment.analysis_seconds))
        return deployment.analysis_seconds
    if now < deployment.next_run_at and not deployment.promote_requested:
        return (deployment.next_run_at - now).total_seconds()
    if not weights_held(deployment, world):
        return None
    verdict = judged(deployment, world, since=deployment.state_since, until=now)
    record(stage, verdict.checks)
    if verdict.failed:
        close(stage, Stage.State.FAILED, verdict.failed)
        raise Refused(f"At {weight} %: {verdict.failed}.")
    baked = (now - deployment.state_since).total_seconds() >= deployment.bake_seconds
    if not (baked or deployment.promote_requested):
        remaining = deployment.bake_seconds - (now - deployment.state_since).total_seconds()
        wait = min(deployment.analysis_seconds, max(remaining, 1))
        save(deployment, next_run_at=now + timedelta(seconds=wait))
        return wait
    if verdict.inconclusive and not deployment.promote_requested:
        close(stage, Stage.State.STOPPED, verdict.inconclusive)
        save(deployment, action="deployment.pause", paused_at=now, error=verdict.inconclusive)
        alert(
            deployment,
            f"paused at {weight} %",
            f"{verdict.inconclusive} Resume to go on, promote, or roll back.",
        )
        return PAUSED
    with transaction.atomic():
        close(stage, Stage.State.PASSED, "promoted" if deployment.promote_requested and not baked else "")
        if weight == 100:
            go_live(deployment)
        else:
            move(deployment, D.SHIFTING, step=deployment.step + 1, promote_requested=False)
    return None
