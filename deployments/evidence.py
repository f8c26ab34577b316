"""What a deployment proves, read from the evidence its stages kept: the change's During items
when it goes live, its After items and the post-deployment report when the monitoring passes.
Runs inside the engine's transaction; every tick is audited by the checklist hook."""

from changes import integrations
from deployments.judge import CheckName
from deployments.models import Deployment, Stage
from portal import clock


def prove_during(deployment: Deployment) -> None:
    """Ticks the items the deployment engine proves, each with its own evidence; an item whose
    evidence is missing or says otherwise stays open."""
    stages = list(deployment.stages.all())
    traffic = [s for s in stages if s.kind == Stage.Kind.TRAFFIC and s.state == Stage.State.PASSED]
    _prove(
        deployment,
        "deployment",
        {
            "blue_healthy": _found(stages, Stage.Kind.PREFLIGHT, "Live colour health"),
            "green_deployed": _found(
                stages, Stage.Kind.DEPLOY, CheckName.TARGET_HEALTH, f"{deployment.version} on"
            ),
            "smoke_tests": _smoke_words(stages, Stage.Kind.SMOKE),
            "traffic_shift": _shift_words(traffic, deployment.to_colour),
            "metrics_in_range": _worst_words(traffic),
            "no_critical_errors": _errors_words(traffic),
        },
    )


def prove_after(deployment: Deployment) -> None:
    """Ticks the items the post-deployment verification proves, each with its own evidence; an
    item whose evidence is missing or says otherwise (a regression) stays open for a person."""
    stages = list(deployment.stages.all())
    watched = [s for s in stages if s.kind in (Stage.Kind.VERIFY, Stage.Kind.MONITOR)]
    _prove(
        deployment,
        "post_deployment",
        {
            "full_smoke_suite": _smoke_words(watched, Stage.Kind.VERIFY)
            or _smoke_words(watched, Stage.Kind.MONITOR),
            "performance_baseline": _worst_words(watched, names=(CheckName.P95, CheckName.P99)),
            "error_rates_normal": _worst_words(watched, names=(CheckName.ERROR_RATE,)),
            "post_deployment_report": f"Post-deployment report of deployment {deployment.pk}",
        },
    )


def _prove(deployment: Deployment, integration: str, evidence: dict[str, str]) -> None:
    for key, words in evidence.items():
        if words:
            integrations.checklist_prove(
                change=deployment.change, integration=integration, evidence=words, key=key
            )


def _found(stages: list[Stage], kind: str, name: str, prefix: str = "") -> str:
    """The last such check of that kind of stage, in words."""
    for stage in reversed([s for s in stages if s.kind == kind]):
        for check in reversed(stage.checks):
            if check["name"] == name and check["ok"]:
                return f"{prefix} {stage.name}: {check['value']} {check.get('detail', '')}".strip()
    return ""


def _smoke_words(stages: list[Stage], kind: str) -> str:
    """Every smoke test of these stages passed, in words; nothing when there were none or one failed."""
    smoke = [c for s in stages if s.kind == kind for c in s.checks if c["name"].startswith("GET ")]
    if not smoke or not all(c["ok"] for c in smoke):
        return ""
    last = {c["name"]: c for c in smoke}
    return f"{len(smoke)} smoke test(s) passed: " + "; ".join(f"{n} {c['detail']}" for n, c in last.items())


def _shift_words(traffic: list[Stage], colour: str) -> str:
    """The steps the traffic went through, each judged; a step promoted past its bake says so."""
    if not traffic:
        return ""
    steps = " → ".join(f"{s.weight} %" + (" (promoted)" if s.message == "promoted" else "") for s in traffic)
    return f"{steps} on {colour}, each step judged"


def _worst_words(stages: list[Stage], names=(CheckName.ERROR_RATE, CheckName.P95, CheckName.P99)) -> str:
    """The worst value of each metric over the stages, against its threshold."""
    worst = {}
    measured = (c for s in stages for c in s.checks if isinstance(c.get("value"), int | float))
    for check in (c for c in measured if c["name"] in names):
        if check["name"] not in worst or check["value"] > worst[check["name"]]["value"]:
            worst[check["name"]] = check
    judged = [c for s in stages for c in s.checks if c["name"] in names]
    if not worst or not all(c["ok"] is not False for c in judged):
        return ""
    return "Worst: " + ", ".join(f"{n} {c['value']} (limit {c['threshold']})" for n, c in worst.items())


def _errors_words(stages: list[Stage]) -> str:
    alarms = [c for s in stages for c in s.checks if c["name"] == CheckName.ALARMS]
    rates = [c for s in stages for c in s.checks if c["name"] == CheckName.ERROR_RATE]
    if not rates or not all(c["ok"] for c in rates + alarms):
        return ""
    said = "no alarm in ALARM" if alarms else "no alarms configured"
    return f"5xx within the SLA at every step ({len(rates)} judgement(s)); {said}"


def report(deployment: Deployment) -> dict:
    """The post-deployment report: what shipped, each stage's timing and the last values of its
    gates, how the monitoring went, and the checklist's After items."""
    from catalogue.choices import Phase

    change = deployment.change
    release = getattr(change, "release", None)
    stages = list(deployment.stages.all())
    now = clock.now()
    return {
        "change": {"number": change.number, "title": change.title, "url": change.get_absolute_url()},
        "environment": deployment.environment.name,
        "version": deployment.version,
        "release_url": getattr(release, "url", "") or "",
        "colours": {"from": deployment.from_colour, "to": deployment.to_colour},
        "started_by": str(deployment.started_by or ""),
        "started_at": deployment.created_at.isoformat(),
        "live_at": deployment.live_at.isoformat() if deployment.live_at else None,
        "completed_at": now.isoformat(),
        "snapshot": deployment.snapshot_id,
        "stages": [
            {
                "name": s.name,
                "kind": s.kind,
                "state": s.state,
                "seconds": round(((s.ended_at or now) - s.started_at).total_seconds()),
                "rounds": len({c.get("at") for c in s.checks}),
                "gates": list({c["name"]: c for c in s.checks}.values()),
            }
            for s in stages
        ],
        "monitoring": {
            "regression": deployment.regression,
            "ended_early_by": str(deployment.ended_early_by or ""),
            "ended_early_reason": deployment.ended_early_reason,
        },
        "after": [
            {"text": i.text, "done": i.done, "evidence": i.evidence}
            for i in change.checklist.all()
            if Phase.AFTER in i.phases
        ],
    }
