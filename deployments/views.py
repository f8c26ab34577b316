"""What a person browses and clicks: the environments with their details, deploy settings and
dashboards; Deploy on a ready change; a deployment's stages with their evidence, and its controls."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from deployments import services
from deployments.forms import RollbackForm
from deployments.models import Deployment, Environment, Service
from portal import mfa
from portal.forms import OTPForm
from portal.roles import Right, has_right, missing_right_message
from portal.views.errors import forbidden


@login_required
def catalogue(request):
    if not request.user.has_perm(Right.ENVIRONMENT_VIEW):
        return forbidden(request, reason=missing_right_message(Right.ENVIRONMENT_VIEW))
    environments = Environment.objects.select_related("approval_policy", "deploy_settings").prefetch_related(
        "services"
    )
    services_ = Service.objects.prefetch_related("environments")
    return render(
        request, "deployments/catalogue.html", {"environments": environments, "services": services_}
    )


@login_required
@require_POST
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
    # The page polls itself while the deployment runs; htmx swaps in its head and progress.
    return render(request, "deployments/detail.html", _context(request, deployment))


def _context(request, deployment: Deployment, **forms) -> dict:
    user = request.user
    may_steer = has_right(user, Right.DEPLOYMENT_DEPLOY)
    may_roll_back = services.rollback_right(user, deployment) is not None
    return {
        "deployment": deployment,
        "from_weight": 100 - deployment.applied_weight,
        "stages": list(deployment.stages.all()),
        "may_steer": may_steer and deployment.active,
        "may_roll_back": may_roll_back
        and (deployment.active or deployment.state == Deployment.State.SUCCEEDED),
        "otp_form": forms.get("otp_form") or OTPForm(),
        "rollback_form": forms.get("rollback_form") or RollbackForm(prefix="rollback"),
    }


CONTROLS = {
    "pause": (services.deployment_pause, "Paused: the weights hold."),
    "resume": (services.deployment_resume, "Resumed."),
    "promote": (services.deployment_promote, "Promoted: the rest of this step's bake is skipped."),
}


@login_required
@require_POST
def deployment_control(request, pk: int, action: str):
    deployment = _deployment(request, pk)
    if action == "rollback":
        form = RollbackForm(request.POST, prefix="rollback")
        act = lambda: services.deployment_rollback(  # noqa: E731
            actor=request.user,
            deployment=deployment,
            reason=form.cleaned_data["reason"],
            revert=form.cleaned_data["revert"],
        )
        done, forms = "Rolling back: traffic goes back to the previous colour.", {"rollback_form": form}
    elif action in CONTROLS:
        form = OTPForm(request.POST)
        service, done = CONTROLS[action]
        act = lambda: service(actor=request.user, deployment=deployment)  # noqa: E731
        forms = {"otp_form": form}
    else:
        return forbidden(request, reason="There is no such control.")
    if form.is_valid() and mfa.check_form_code(request, form).ok:
        try:
            act()
        except services.DeployRefused as refused:
            form.add_error(None, " ".join(refused.reasons))
        except PermissionDenied as refused:
            return forbidden(request, reason=str(refused))
        else:
            messages.success(request, done)
            return redirect("deployment-detail", pk=pk)
    return render(
        request, "deployments/detail.html", _context(request, _deployment(request, pk), **forms), status=400
    )
