"""The incident pages: the list (with declaring), and one incident with its timeline, notes and
steps. The services guard and audit every write; a refusal is shown on the page, never a 500."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from deployments.forms import RollbackForm
from deployments.services import rollback_right
from incidents import services
from incidents.forms import (
    ActionItemForm,
    ActionItemStateForm,
    DeclareForm,
    NoteForm,
    PostMortemForm,
    PublishForm,
    StepForm,
)
from incidents.models import ActionItem, Incident, IncidentStatus, PostMortem
from incidents.selectors import postmortem_of
from portal import clock, mfa
from portal.forms import OTPForm
from portal.models import Notification
from portal.roles import Right, has_right, missing_right_message
from portal.views.errors import forbidden, right_needed

STEPS = {
    "acknowledge": (services.incident_acknowledge, IncidentStatus.ACKNOWLEDGED),
    "mitigate": (services.incident_mitigate, IncidentStatus.MITIGATED),
    "resolve": (services.incident_resolve, IncidentStatus.RESOLVED),
}
# What each act on an incident needs, checked before the incident is looked up.
_ROLLBACK = (Right.DEPLOYMENT_ROLLBACK, Right.DEPLOYMENT_ROLLBACK_INCIDENT)
ACT_RIGHTS = {
    **{step: (Right.INCIDENT_MANAGE,) for step in [*STEPS, "publish", "unpublish", "command"]},
    **{act: (Right.INCIDENT_DECLARE,) for act in ["join", "note"]},
    "rollback": _ROLLBACK,
    "revert": _ROLLBACK,
}


@login_required
def incident_list(request):
    if not has_right(request.user, Right.INCIDENT_VIEW):
        return forbidden(request, reason=missing_right_message(Right.INCIDENT_VIEW))
    offer_public = has_right(request.user, Right.INCIDENT_MANAGE)
    form, status = DeclareForm(offer_public=offer_public), 200
    if request.method == "POST" and not has_right(request.user, Right.INCIDENT_DECLARE):
        return forbidden(request, reason=missing_right_message(Right.INCIDENT_DECLARE))
    if request.method == "POST":
        form = DeclareForm(request.POST, offer_public=offer_public)
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
        "incidents": incidents,
        "form": form,
        "statuses": IncidentStatus.choices,
        "may_declare": has_right(request.user, Right.INCIDENT_DECLARE),
    }
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
    deployment = incident.deployment
    user = request.user
    return {
        "incident": incident,
        "timeline": _with_deliveries(list(incident.timeline.select_related("actor"))),
        "steps": [name for name, (_, status) in STEPS.items() if incident.can_transition_to(status)],
        "may_run": has_right(request.user, Right.INCIDENT_MANAGE),
        "may_note": has_right(request.user, Right.INCIDENT_DECLARE),
        "may_join": incident.status != IncidentStatus.RESOLVED
        and has_right(user, Right.INCIDENT_DECLARE)
        and user not in incident.responders.all(),
        "may_command": incident.status != IncidentStatus.RESOLVED
        and has_right(user, Right.INCIDENT_MANAGE)
        and incident.commander_id != user.pk,
        "postmortem": postmortem,
        "postmortem_overdue": postmortem is not None and postmortem.overdue(clock.now()),
        "note_form": forms.get("note_form") or NoteForm(offer_public=_offers_public(user, incident)),
        "step_form": forms.get("step_form") or StepForm(),
        "publish_form": forms.get("publish_form") or PublishForm(),
        "may_roll_back": (
            deployment is not None
            and incident.status != IncidentStatus.RESOLVED
            and rollback_right(user, deployment) is not None
        ),
        "may_revert": incident.change_id is not None and services.may_revert(user),
        "may_file_change": has_right(user, Right.CHANGE_CREATE)
        and incident.status != IncidentStatus.RESOLVED,
        "rollback_form": forms.get("rollback_form") or RollbackForm(prefix="rollback"),
        "revert_form": forms.get("revert_form") or OTPForm(prefix="revert"),
    }


def _offers_public(user, incident: Incident) -> bool:
    return incident.public and has_right(user, Right.INCIDENT_MANAGE)


def _with_deliveries(timeline: list) -> list:
    """Each page on the timeline with how its delivery went (pending and retried while PagerDuty
    is down, sent, failed, or only logged without a routing key), read in one query."""
    pages = {e.data["notification"] for e in timeline if isinstance(e.data.get("notification"), int)}
    sent = Notification.objects.in_bulk(pages) if pages else {}
    for entry in timeline:
        entry.delivery = sent.get(entry.data.get("notification"))
    return timeline


@login_required
@require_POST
@right_needed(actions=ACT_RIGHTS)
def incident_act(request, pk: int, action: str):
    """A step (acknowledge, mitigate, resolve), a note, joining the response or taking command, or an
    act on what the incident follows (roll its deployment back, revert its release: each with a
    fresh code), by the signed-in person."""
    incident = get_object_or_404(Incident.objects.select_related("deployment__change"), pk=pk)
    if action in ACTS:
        return _act_with_code(request, incident, action)
    if action == "note":
        form, key = NoteForm(request.POST, offer_public=_offers_public(request.user, incident)), "note_form"

        def act():
            services.incident_note(actor=request.user, incident=incident, **form.cleaned_data)

    elif action == "publish":
        if not has_right(request.user, Right.INCIDENT_MANAGE):  # refused before the form is read
            return forbidden(request, reason=missing_right_message(Right.INCIDENT_MANAGE))
        form, key = PublishForm(request.POST), "publish_form"

        def act():
            services.incident_publish(actor=request.user, incident=incident, public=True, **form.cleaned_data)

    elif action in TEAM:
        form, key, service = StepForm({}), "step_form", TEAM[action]

        def act():
            service(actor=request.user, incident=incident)

    elif action in STEPS:
        form, key, step = StepForm(request.POST), "step_form", STEPS[action][0]

        def act():
            step(actor=request.user, incident=incident, note=form.cleaned_data["note"])

    else:
        raise Http404(f"There is no step {action!r} for an incident.")
    if form.is_valid():
        try:
            act()
        except PermissionDenied as refused:
            return forbidden(request, reason=str(refused))
        except ValidationError as refused:
            form.add_error(None, " ".join(refused.messages))
        else:
            done = {
                "note": "Noted.",
                "join": "You joined the response.",
                "command": "You have command.",
                "publish": "On the public status page.",
                "unpublish": "Taken off the public status page.",
            }
            messages.success(request, done.get(action) or f"{incident.number}: {action}d.")
            return redirect("incident-detail", pk=pk)
    return render(request, "incidents/detail.html", _context(request, pk, **{key: form}), status=400)


# Who responds: joining (anyone who may declare), taking command (whoever runs incidents); and
# putting the incident on the public status page or taking it off (whoever runs incidents).
TEAM = {
    "join": services.incident_join,
    "command": services.incident_take_command,
    "unpublish": lambda **who: services.incident_publish(**who, public=False),
}

ACTS = {
    "rollback": (
        lambda data: RollbackForm(data, prefix="rollback"),
        lambda user, incident, form: services.incident_rollback(
            actor=user,
            incident=incident,
            reason=form.cleaned_data["reason"],
            revert=form.cleaned_data["revert"],
        ),
        "Rolling back: traffic goes back to the previous colour.",
    ),
    "revert": (
        lambda data: OTPForm(data, prefix="revert"),
        lambda user, incident, form: services.incident_revert(actor=user, incident=incident),
        "The code revert is asked for: the timeline says what came of it.",
    ),
}


def _act_with_code(request, incident: Incident, action: str):
    make_form, act, done = ACTS[action]
    form = make_form(request.POST)
    try:
        succeeded = mfa.done_with_code(request, form, lambda: act(request.user, incident, form))
    except PermissionDenied as refused:
        return forbidden(request, reason=str(refused))
    if succeeded:
        messages.success(request, done)
        return redirect("incident-detail", pk=incident.pk)
    context = _context(request, incident.pk, **{f"{action}_form": form})
    return render(request, "incidents/detail.html", context, status=400)


# The post-mortem: its page (read by all who see incidents, written by those who may declare
# them), finishing it, and its action items.


def _postmortem_page(request, postmortem: PostMortem, *, status: int = 200, **forms):
    today = clock.now().date()
    items = list(postmortem.action_items.all())
    for item in items:
        item.is_overdue = item.overdue(today)
    context = {
        "incident": postmortem.incident,
        "postmortem": postmortem,
        "overdue": postmortem.overdue(clock.now()),
        "items": items,
        "may_write": has_right(request.user, Right.INCIDENT_DECLARE),
        "may_run": has_right(request.user, Right.INCIDENT_MANAGE),
        "form": forms.get("form") or PostMortemForm(instance=postmortem),
        "item_form": forms.get("item_form") or ActionItemForm(),
        "states": ActionItem.State.choices,
    }
    return render(request, "incidents/postmortem.html", context, status=status)


@login_required
def postmortem_detail(request, pk: int):
    if not has_right(request.user, Right.INCIDENT_VIEW):
        return forbidden(request, reason=missing_right_message(Right.INCIDENT_VIEW))
    postmortem = postmortem_of(pk)
    if request.method != "POST":
        return _postmortem_page(request, postmortem)
    form = PostMortemForm(request.POST, instance=PostMortem(incident=postmortem.incident))
    if not form.is_valid():
        return _postmortem_page(request, postmortem, form=form, status=400)
    fields = {name: form.cleaned_data[name] for name in form.Meta.fields if name in request.POST}
    try:
        services.postmortem_save(
            actor=request.user, postmortem=postmortem, complete="complete" in request.POST, **fields
        )
    except PermissionDenied as refused:
        return forbidden(request, reason=str(refused))
    except ValidationError as refused:
        form.add_error(None, " ".join(refused.messages))
        return _postmortem_page(request, postmortem_of(pk), form=form, status=400)
    messages.success(
        request, "Post-mortem completed." if "complete" in request.POST else "Post-mortem saved."
    )
    return redirect("postmortem-detail", pk=pk)


@login_required
@require_POST
@right_needed(Right.INCIDENT_DECLARE)
def action_item_add(request, pk: int):
    postmortem = postmortem_of(pk)
    form = ActionItemForm(request.POST)
    if form.is_valid():
        try:
            services.action_item_add(actor=request.user, postmortem=postmortem, **form.cleaned_data)
        except PermissionDenied as refused:
            return forbidden(request, reason=str(refused))
        except ValidationError as refused:
            form.add_error(None, " ".join(refused.messages))
        else:
            messages.success(request, "Action item added; its owner is told.")
            return redirect("postmortem-detail", pk=pk)
    return _postmortem_page(request, postmortem, item_form=form, status=400)


@login_required
@require_POST
@right_needed(Right.INCIDENT_DECLARE)
def action_item_state(request, pk: int, item: int):
    action_item = get_object_or_404(
        ActionItem.objects.select_related("owner"), pk=item, postmortem__incident_id=pk
    )
    form = ActionItemStateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose open, done or dropped.")
        return _postmortem_page(request, postmortem_of(pk), status=400)
    try:
        services.action_item_set_state(actor=request.user, item=action_item, state=form.cleaned_data["state"])
    except PermissionDenied as refused:
        return forbidden(request, reason=str(refused))
    messages.success(request, f"{action_item.title}: {form.cleaned_data['state']}.")
    return redirect("postmortem-detail", pk=pk)
