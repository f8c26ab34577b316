"""What a person browses and clicks: the environments with their details, deploy settings and
dashboards; Deploy on a ready change; a deployment's stages with their evidence, and its controls."""

from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from catalogue.models import Environment, Service
from deployments import services
from deployments.forms import EndMonitoringForm, RollbackForm
from deployments.models import Deployment, Stage
from portal import hooks, mfa
from portal.forms import OTPForm
from portal.models import AuditEvent
from portal.roles import Right, has_right, missing_right_message
from portal.views.errors import forbidden, right_needed


@login_required
def catalogue(request, status: int = 200):
    if not request.user.has_perm(Right.ENVIRONMENT_VIEW):
        return forbidden(request, reason=missing_right_message(Right.ENVIRONMENT_VIEW))
    environments = Environment.objects.select_related("approval_policy", "deploy_settings").prefetch_related(
        "services"
    )
    services_ = Service.objects.prefetch_related("environments")
    environments = list(environments)
    from changes.selectors import ahead_of_live

    ahead = ahead_of_live()
    for environment in environments:
        environment.panels = [p for p in hooks.environment_panels.send(environment=environment) if p]
        environment.ahead = [r for r in ahead if r.change.environment_id == environment.pk]
    return render(
        request,
        "deployments/catalogue.html",
        {"environments": environments, "services": services_},
        status=status,
    )


@login_required
@require_POST
@right_needed(Right.DEPLOYMENT_DEPLOY)
def change_deploy(request, pk: int):
    """The Deploy button: with a fresh code, to the deployment's page; or back with the reasons."""
    from changes.models import ChangeRequest

    change = get_object_or_404(ChangeRequest, pk=pk)
    if not request.user.has_perm(Right.DEPLOYMENT_DEPLOY):
        return forbidden(request, reason=missing_right_message(Right.DEPLOYMENT_DEPLOY))
    form = OTPForm(request.POST, prefix="deploy")
    if not (form.is_valid() and mfa.check_form_code(request, form).ok):
        messages.error(request, "Deploy: " + " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("change-detail", pk=pk)
    try:
        deployment = services.deploy(actor=request.user, change=change)
    except services.DeployRefused as refused:
        messages.error(request, "Not deployed: " + " ".join(refused.reasons))
        return redirect("change-detail", pk=pk)
    messages.success(request, f"{change.number} is deploying to {change.environment}.")
    return redirect("deployment-detail", pk=deployment.pk)


def _deployment(request, pk: int) -> Deployment:
    return get_object_or_404(
        Deployment.objects.select_related(
            "change", "environment__deploy_settings", "started_by"
        ).prefetch_related("stages"),
        pk=pk,
    )


@login_required
def deployment_detail(request, pk: int):
    if not request.user.has_perm(Right.DEPLOYMENT_VIEW):
        return forbidden(request, reason=missing_right_message(Right.DEPLOYMENT_VIEW))
    deployment = _deployment(request, pk)
    # The page polls itself while the deployment runs; htmx swaps in its head and progress, and
    # reloads the whole page when what a person may do changes (the forms are then new).
    if request.htmx and request.GET.get("seen") not in (None, _shape(deployment)):
        return HttpResponse(headers={"HX-Refresh": "true"})
    return render(request, "deployments/detail.html", _context(request, deployment))


@login_required
def deployment_report(request, pk: int):
    """The post-deployment report kept when the monitoring passed: what shipped, each stage's
    timing and gates, the monitoring, the After items."""
    if not request.user.has_perm(Right.DEPLOYMENT_VIEW):
        return forbidden(request, reason=missing_right_message(Right.DEPLOYMENT_VIEW))
    deployment = get_object_or_404(Deployment.objects.select_related("change", "environment"), pk=pk)
    if not deployment.report:
        raise Http404("This deployment has no report yet: it is written when the monitoring passes.")
    report = deployment.report
    times = {
        k: datetime.fromisoformat(report[k])
        for k in ("started_at", "live_at", "completed_at")
        if report.get(k)
    }
    return render(
        request, "deployments/report.html", {"deployment": deployment, "report": report, "times": times}
    )


def _shape(deployment: Deployment) -> str:
    """What the page's controls depend on: its state, paused or not, a regression seen."""
    return f"{deployment.state}-{deployment.paused_at is not None}-{bool(deployment.regressed_at)}"


def _context(request, deployment: Deployment, **forms) -> dict:
    user = request.user
    may_steer = has_right(user, Right.DEPLOYMENT_DEPLOY)
    may_roll_back = services.rollback_right(user, deployment) is not None
    monitoring = deployment.state == Deployment.State.MONITORING
    stages = list(deployment.stages.all())
    return {
        "deployment": deployment,
        "shape": _shape(deployment),
        "from_weight": 100 - deployment.applied_weight,
        "plan": _plan(deployment, stages),
        "stages": stages,
        "activity": _activity(deployment),
        "verify_until": _verify_until(deployment),
        "may_steer": may_steer and deployment.active and not monitoring,
        "may_end_monitoring": may_steer and monitoring and not deployment.rollback_requested,
        "may_roll_back": may_roll_back
        and (deployment.active or deployment.state == Deployment.State.SUCCEEDED),
        "otp_form": forms.get("otp_form") or OTPForm(),
        "rollback_form": forms.get("rollback_form") or RollbackForm(prefix="rollback"),
        "end_form": forms.get("end_form") or EndMonitoringForm(prefix="end"),
    }


def _plan(deployment: Deployment, stages: list[Stage]) -> list[dict]:
    """The plan as a track: 0 % (the smoke-tested idle colour), each step of traffic, then the
    monitoring; each passed, failed, running or to come, as its stage says."""
    state = {}
    for stage in stages:  # in order: a later stage of the same step (a retry) has the last word
        if stage.kind in (Stage.Kind.SMOKE, Stage.Kind.TRAFFIC):
            state[stage.weight] = stage.state
        elif stage.kind in (Stage.Kind.VERIFY, Stage.Kind.MONITOR):
            state["monitored"] = stage.state
    steps = [{"label": f"{weight} %", "state": state.get(weight, "todo")} for weight in [0, *deployment.plan]]
    return steps + [{"label": "Monitored", "state": state.get("monitored", "todo")}]


def _verify_until(deployment: Deployment):
    if deployment.live_at is None:
        return None
    settings_ = deployment.environment.deploy_settings
    return deployment.live_at + timedelta(seconds=settings_.verify_seconds)


# What the page's "who did what" tells: every act of a person, and the engine's turns, in words.
DONE = {
    "deployment.start": "started the deployment",
    "deployment.pause": "paused it",
    "deployment.resume": "resumed it",
    "deployment.promote": "promoted the step",
    "deployment.rollback": "asked for a rollback",
    "deployment.end_monitoring": "ended the monitoring early",
    "deployment.state": "moved it on",
    "deployment.regressed": "saw a regression",
    "deployment.stuck": "said it is stuck",
}


def _activity(deployment: Deployment) -> list[dict]:
    events = AuditEvent.objects.filter(object_type="deployments.deployment", object_id=str(deployment.pk))
    events = events.filter(Q(actor_id__isnull=False) | Q(action__in=DONE)).order_by("-id")[:40]
    told = []
    for event in events:
        after = event.after or {}
        what = DONE.get(event.action, event.action)
        if event.action == "deployment.state" and after.get("state"):
            what = f"moved it to {Deployment.State(after['state']).label.lower()}"
        note = after.get("note") or after.get("reason") or after.get("ended_early_reason") or ""
        told.append({"at": event.created_at, "who": event.actor_name, "what": what, "note": note})
    return told


CONTROLS = {
    "pause": (services.deployment_pause, "Paused: the weights hold."),
    "resume": (services.deployment_resume, "Resumed."),
    "promote": (services.deployment_promote, "Promoted: the rest of this step's bake is skipped."),
}


# What each control needs, checked before the deployment is looked up.
CONTROL_RIGHTS = {
    **{action: (Right.DEPLOYMENT_DEPLOY,) for action in [*CONTROLS, "end-monitoring"]},
    "rollback": (Right.DEPLOYMENT_ROLLBACK, Right.DEPLOYMENT_ROLLBACK_INCIDENT),
}


def rollback_act(request, deployment: Deployment, form: RollbackForm):
    """The rollback a valid RollbackForm asks for, by the signed-in person, to run through
    `done_with_code`."""
    return lambda: services.deployment_rollback(
        actor=request.user,
        deployment=deployment,
        reason=form.cleaned_data["reason"],
        revert=form.cleaned_data["revert"],
    )


@login_required
@require_POST
@right_needed(actions=CONTROL_RIGHTS)
def deployment_control(request, pk: int, action: str):
    deployment = _deployment(request, pk)
    if action == "rollback":
        form = RollbackForm(request.POST, prefix="rollback")
        act = rollback_act(request, deployment, form)
        done, forms = "Rolling back: traffic goes back to the previous colour.", {"rollback_form": form}
    elif action == "end-monitoring":
        form = EndMonitoringForm(request.POST, prefix="end")
        act = lambda: services.deployment_end_monitoring(  # noqa: E731
            actor=request.user, deployment=deployment, reason=form.cleaned_data["reason"]
        )
        done, forms = "Monitoring ended: the change completes now.", {"end_form": form}
    elif action in CONTROLS:
        form = OTPForm(request.POST)
        service, done = CONTROLS[action]
        act = lambda: service(actor=request.user, deployment=deployment)  # noqa: E731
        forms = {"otp_form": form}
    else:
        return forbidden(request, reason="There is no such control.")
    try:
        succeeded = mfa.done_with_code(request, form, act)
    except PermissionDenied as refused:
        return forbidden(request, reason=str(refused))
    if succeeded:
        messages.success(request, done)
        return redirect("deployment-detail", pk=pk)
    return render(
        request, "deployments/detail.html", _context(request, _deployment(request, pk), **forms), status=400
    )
