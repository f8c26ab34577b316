"""The Releases page: what version runs in each environment, since when and from which change, and
every release and rollback there. The release before the live one may be rolled back to while its
colour is kept (through the deployment page's rollback); an older version comes back through a new
change, whose form the page fills in."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from deployments import selectors, services
from deployments.forms import ReleaseFilterForm, RollbackForm
from deployments.models import Deployment
from deployments.views import rollback_act
from portal import mfa
from portal.roles import Right, has_right, missing_right_message
from portal.views.errors import forbidden, right_needed

READ_RIGHTS = (Right.CHANGE_VIEW, Right.DEPLOYMENT_VIEW)


def _refusal(user) -> str | None:
    """Why this person may not read releases (they show changes and deployments), or None."""
    missing = next((right for right in READ_RIGHTS if not has_right(user, right)), None)
    return missing_right_message(missing) if missing else None


def _before(request) -> int | None:
    """The deployment an "older releases" page starts below."""
    value = request.GET.get("before", "")
    if not value:
        return None
    if not value.isdigit():
        raise Http404("That page of releases does not exist.")
    return int(value)


@login_required
def release_list(request):
    refusal = _refusal(request.user)
    if refusal:
        return forbidden(request, reason=refusal)
    filter_form = ReleaseFilterForm(request.GET)
    if not filter_form.is_valid():
        context = {"filter_form": filter_form, "sections": []}
        return render(request, "deployments/releases.html", context, status=400)
    context = _context(
        request,
        filter_form,
        environment=filter_form.cleaned_data["environment"],
        service=filter_form.cleaned_data["service"],
        before=_before(request),
    )
    return render(request, "deployments/releases.html", context)


def _context(request, filter_form, *, environment="", service="", before=None, refused_form=None) -> dict:
    sections = selectors.releases(request.user, environment=environment, service=service, before=before)
    for section in sections:
        _offer_rollback(request, section, refused_form)
        _offer_new_changes(request, section)
        section.more_url = _older_url(section, service) if section.more else ""
    return {"filter_form": filter_form, "sections": sections, "service": service, "before": before}


def _older_url(section, service: str) -> str:
    """The environment's next older releases, after the last one shown."""
    query = {"environment": section.environment.name, "service": service, "before": section.history[-1].pk}
    return f"{reverse('release-list')}?{urlencode({k: v for k, v in query.items() if v})}"


def _offer_rollback(request, section, refused_form) -> None:
    """The rollback form for the release before the live one, while its colour is kept, to those
    who may roll the live release back (the form just refused, when there is one: the page then
    shows only its environment)."""
    section.rollback_form = None
    if section.rollback_to is None or services.rollback_right(request.user, section.live) is None:
        return
    form = refused_form or RollbackForm(prefix="rollback", auto_id=f"id_{section.environment.name}_%s")
    form.fields["otp"].widget.attrs.pop("autofocus", None)  # one form among many on the page
    section.rollback_form = form


def _offer_new_changes(request, section) -> None:
    """A new change for each older version that went live, filled in to bring it back, where the
    rollback form is not offered, to those who file changes."""
    may_file = has_right(request.user, Right.CHANGE_CREATE)
    for row in section.history:
        offered = section.rollback_form is not None and row.pk == section.rollback_to.pk
        row.new_change_url = (
            new_change_url(row)
            if may_file and row.version and row.outcome == selectors.Outcome.SUPERSEDED and not offered
            else ""
        )


def new_change_url(deployment: Deployment) -> str:
    """The new change form filled in to bring back this release's version: the title, the
    environment and services by name, and where it came from (the version's commit is the one the
    new change's branch carries)."""
    environment, version = deployment.environment, deployment.version
    services_ = [service.name for service in deployment.change.services.all()]
    query = {
        "title": f"Roll {', '.join(services_) or environment.name} back to {version}",
        "description": f"Brings {version} back to {environment}; {deployment.change.number} released it.",
        "environment": environment.name,
        "services": services_,
    }
    return f"{reverse('change-new')}?{urlencode(query, doseq=True)}"


@login_required
@require_POST
@right_needed(Right.DEPLOYMENT_ROLLBACK, Right.DEPLOYMENT_ROLLBACK_INCIDENT)
def release_rollback(request, pk: int):
    """Rolls the live release (deployment `pk`) back to the release before it, while its colour is
    kept, with a reason and a fresh code: the deployment page's rollback, asked from here."""
    refusal = _refusal(request.user)
    if refusal:
        return forbidden(request, reason=refusal)
    deployment = get_object_or_404(Deployment.objects.select_related("environment", "change"), pk=pk)
    if services.rollback_right(request.user, deployment) is None:
        return forbidden(request, reason=missing_right_message(Right.DEPLOYMENT_ROLLBACK))
    environment = deployment.environment
    section = selectors.environment_releases(request.user, environment.name)
    if section.rollback_to is None or section.live.pk != deployment.pk:
        messages.error(
            request,
            f"Nothing was rolled back: {deployment.version or 'that release'} is no longer the live "
            f"release of {environment}, or the colour before it is no longer kept. File a new change "
            "for the older version instead.",
        )
        return redirect(f"{reverse('release-list')}?{urlencode({'environment': environment.name})}")
    live, target = section.live, section.rollback_to
    form = RollbackForm(request.POST, prefix="rollback", auto_id=f"id_{environment.name}_%s")
    try:
        done = mfa.done_with_code(request, form, rollback_act(request, live, form))
    except PermissionDenied as refused:
        return forbidden(request, reason=str(refused))
    if done:
        messages.success(
            request,
            f"Rolling {environment} back to {target.version}: traffic goes back to {live.from_colour}.",
        )
        return redirect("deployment-detail", pk=live.pk)
    filter_form = ReleaseFilterForm({"environment": environment.name})
    filter_form.is_valid()
    context = _context(request, filter_form, environment=environment.name, refused_form=form)
    return render(request, "deployments/releases.html", context, status=400)
