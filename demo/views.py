"""The simulated production on the environments page: what each colour runs and the bad-release
switch that decides what the next release deployed there does."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from catalogue.models import Environment
from demo import simulation
from deployments import views as deployment_views
from deployments.models import DeploySettings
from portal.roles import Right
from portal.services import audit_record
from portal.views.errors import right_needed


def simulation_panel(*, environment: Environment) -> dict | None:
    """The panel of a simulated production on its environment's card: what each colour runs, and
    the bad-release switch (a subscriber of portal.hooks.environment_panels)."""
    deploy = getattr(environment, "deploy_settings", None)
    if deploy is None or deploy.telemetry != DeploySettings.Telemetry.SIMULATED:
        return None
    return {
        "colours": [(c, simulation.behaviour(deploy.target_group(c))) for c in ("blue", "green")],
        "next": simulation.next_release_fault(environment.name),
        "faults": simulation.FAULTS,
        "template": "demo/simulation_panel.html",
    }


@login_required
@require_POST
@right_needed(Right.DEPLOYMENT_DEPLOY)
def simulation_switch(request, name: str):
    """The bad-release switch of a simulated production: what the next release deployed does."""
    environment = get_object_or_404(Environment.objects.select_related("deploy_settings"), name=name)
    if simulation_panel(environment=environment) is None:
        raise Http404(f"{environment} is not a simulated production.")
    fault = request.POST.get("fault")
    if fault not in simulation.FAULTS:
        messages.error(request, f"Say what the next release does: {', '.join(simulation.FAULTS.values())}.")
        return deployment_views.catalogue(request, status=400)
    with transaction.atomic():
        audit_record(
            actor=request.user,
            action="simulation.next_release",
            target=environment,
            before={"fault": simulation.next_release_fault(environment.name)},
            after={"fault": fault},
        )
        simulation.next_release_fault_set(environment.name, fault)
    messages.success(request, f"The next release deployed to {environment} is: {simulation.FAULTS[fault]}.")
    return redirect("catalogue")
