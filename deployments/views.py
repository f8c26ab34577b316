"""The catalogue a person browses: environments with their details and policy, and services."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from deployments.models import Environment, Service
from portal.roles import Right, missing_right_message
from portal.views.errors import forbidden


@login_required
def catalogue(request):
    if not request.user.has_perm(Right.ENVIRONMENT_VIEW):
        return forbidden(request, reason=missing_right_message(Right.ENVIRONMENT_VIEW))
    environments = Environment.objects.select_related("approval_policy").prefetch_related("services")
    services = Service.objects.prefetch_related("environments")
    return render(request, "deployments/catalogue.html", {"environments": environments, "services": services})
