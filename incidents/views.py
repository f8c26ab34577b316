"""The incident pages: the list (with declaring), and one incident with its timeline, notes and
steps. The services guard and audit every write; a refusal is shown on the page, never a 500."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from incidents import services
from incidents.forms import DeclareForm, NoteForm, StepForm
from incidents.models import Incident, IncidentStatus
from portal import clock
from portal.roles import Right, has_right, missing_right_message
from portal.views.errors import forbidden

STEPS = {
    "acknowledge": (services.incident_acknowledge, IncidentStatus.ACKNOWLEDGED),
    "mitigate": (services.incident_mitigate, IncidentStatus.MITIGATED),
    "resolve": (services.incident_resolve, IncidentStatus.RESOLVED),
}


@login_required
def incident_list(request):
    if not has_right(request.user, Right.INCIDENT_VIEW):
        return forbidden(request, reason=missing_right_message(Right.INCIDENT_VIEW))
    form, status = DeclareForm(), 200
    if request.method == "POST" and not has_right(request.user, Right.INCIDENT_DECLARE):
        return forbidden(request, reason=missing_right_message(Right.INCIDENT_DECLARE))
    if request.method == "POST":
        form = DeclareForm(request.POST)
        incident = _declared(request, form)
        if incident is not None:
            messages.success(request, f"{incident.number} declared and paged.")
            return redirect("incident-detail", pk=incident.pk)
        status = 400
    incidents = Incident.objects.select_related("commander").prefetch_related("services")
    if request.GET.get("status") in IncidentStatus.values:
        incidents = incidents.filter(status=request.GET["status"])
    incidents = list(incidents.select_related("postmortem")[:100])
    now = clock.now()
    for incident in incidents:
        incident.postmortem_overdue = hasattr(incident, "postmortem") and incident.postmortem.overdue(now)
    context = {
        "incidents": incidents, "form": form, "statuses": IncidentStatus.choices,
        "may_declare": has_right(request.user, Right.INCIDENT_DECLARE),
    }  # fmt: skip
    return render(request, "incidents/list.html", context, status=status)


def _declared(request, form: DeclareForm) -> Incident | None:
    if not form.is_valid():
        return None
    try:
        return services.incident_declare(actor=request.user, **form.cleaned_data)
    except ValidationError as refused:
        form.add_error(None, " ".join(refused.messages))
        return None


@login_required
def incident_detail(request, pk: int):
    if not has_right(request.user, Right.INCIDENT_VIEW):
        return forbidden(request, reason=missing_right_message(Right.INCIDENT_VIEW))
    return render(request, "incidents/detail.html", _context(request, pk))


def _context(request, pk: int, **forms) -> dict:
    incident = get_object_or_404(
        Incident.objects.select_related(
            "commander", "declared_by", "change", "deployment__environment"
        ).prefetch_related("services", "responders"),
        pk=pk,
    )
    postmortem = getattr(incident, "postmortem", None)  # a missing one-to-one is an AttributeError
    return {
        "incident": incident,
        "timeline": list(incident.timeline.select_related("actor")),
        "steps": [name for name, (_, status) in STEPS.items() if incident.may_become(status)],
        "may_run": has_right(request.user, Right.INCIDENT_MANAGE),
        "may_note": has_right(request.user, Right.INCIDENT_DECLARE),
        "postmortem": postmortem,
        "postmortem_overdue": postmortem is not None and postmortem.overdue(clock.now()),
        "note_form": forms.get("note_form") or NoteForm(),
        "step_form": forms.get("step_form") or StepForm(),
    }


@login_required
@require_POST
def incident_act(request, pk: int, action: str):
    """A step (acknowledge, mitigate, resolve) or a note, by the signed-in person."""
    incident = get_object_or_404(Incident, pk=pk)
    if action == "note":
        form, key = NoteForm(request.POST), "note_form"

        def act():
            services.incident_note(actor=request.user, incident=incident, text=form.cleaned_data["text"])

    elif action in STEPS:
        form, key, step = StepForm(request.POST), "step_form", STEPS[action][0]

        def act():
            step(actor=request.user, incident=incident, note=form.cleaned_data["note"])

    else:
        return forbidden(request, reason="There is no such step.")
    if form.is_valid():
        try:
            act()
        except PermissionDenied as refused:
            return forbidden(request, reason=str(refused))
        except ValidationError as refused:
            form.add_error(None, " ".join(refused.messages))
        else:
            messages.success(request, "Noted." if action == "note" else f"{incident.number}: {action}d.")
            return redirect("incident-detail", pk=pk)
    return render(request, "incidents/detail.html", _context(request, pk, **{key: form}), status=400)
