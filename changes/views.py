"""Change request pages: list, file, edit, and the change itself with its decisions and checklist."""

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from catalogue.choices import Phase
from changes import rules, selectors, services
from changes.choices import ChangeStatus
from changes.filters import ChangeRequestFilter
from changes.forms import CancelForm, ChangeRequestForm, ChecklistTickForm, CommentForm, DecisionForm
from changes.models import ChangeRequest, ChecklistItem, Comment
from portal import clock, fragments, generations, hooks, mfa
from portal.api.pagination import page_of, without_cursor
from portal.roles import Right, missing_right_message
from portal.views.errors import forbidden, right_needed

PHASE_ORDER = list(Phase.values)
# A screenful, as change-management lists show; the API pages by 50 (or ?page_size=).
PAGE_SIZE = 25
# What it says of a release that carried the change's commits.
SHIPPED_IN_SHOWS = ["id", "version", "change__id", "change__title"]


def _detail(request, pk: int, read=selectors.change_detail):
    try:
        return read(request.user, pk)
    except ObjectDoesNotExist:
        raise Http404("No such change request.") from None


@login_required
def change_list(request):
    if not request.user.has_perm(Right.CHANGE_VIEW):
        return forbidden(request, reason=missing_right_message(Right.CHANGE_VIEW))
    filterset = ChangeRequestFilter(request.GET, queryset=selectors.change_list(request.user))
    page = page_of(request, filterset.qs, page_size=PAGE_SIZE) if filterset.is_valid() else {"rows": []}
    if page is None:
        return redirect(without_cursor(request))
    rows = fragments.render_each(
        "changes/_row.html", "change", selectors.with_service_names(page["rows"]), selectors.list_row_shows
    )
    context = {"filter_form": _filter_form(request, filterset), **page, "rows": rows}
    return render(request, "changes/list.html", context)


def _filter_form(request, filterset):
    """The filters drawn from their parameters in the query string, with their errors, from the
    fragments cache: their fields as this release defines them, and the choices drawn from the
    catalogue as its generation names them."""
    from changes.snapshots import CATALOGUE

    form = filterset.form
    asked = sorted((name, values) for name, values in request.GET.lists() if name in form.fields)
    try:
        catalogue = generations.current(CATALOGUE)
    except generations.CACHE_ERRORS:
        catalogue = None  # drawn anew: the choices may have changed unseen
    shows = [asked, form.errors.get_json_data(), _filters_defined(), catalogue]
    return fragments.render_one("includes/form.html", {"form": form}, shows, keep=catalogue is not None)


@functools.cache
def _filters_defined() -> str:
    """What the filter form's fields are in this release: names, kinds, labels, help, fixed choices."""
    fields = ChangeRequestFilter(queryset=ChangeRequest.objects.none()).form.fields
    defined = []
    for name, field in fields.items():
        choices = getattr(field, "choices", None)
        inner = getattr(choices, "choices", choices)  # django-filter wraps a field's choices
        # Choices in the code; those read from the database are the catalogue's, named by its generation.
        fixed = (
            [(str(value), str(label)) for value, label in choices]
            if isinstance(inner, list | tuple)
            else None
        )
        defined.append(
            (
                name,
                type(field).__name__,
                type(field.widget).__name__,
                str(field.label),
                str(field.help_text),
                fixed,
            )
        )
    return repr(defined)


@login_required
def change_new(request):
    if not request.user.has_perm(Right.CHANGE_CREATE):
        return forbidden(request, reason=missing_right_message(Right.CHANGE_CREATE))
    from changes.models import StandardChangeTemplate

    templates = list(StandardChangeTemplate.objects.filter(active=True).only("id", "name"))
    chosen = next((t for t in templates if str(t.pk) == request.GET.get("template")), None)
    # A standard change starts from its template; a link (a release to bring back) may fill in the rest.
    initial = (
        ChangeRequestForm.initial_from(chosen)
        if chosen
        else ChangeRequestForm.initial_from_query(request.GET)
    )
    form = ChangeRequestForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = services.ChangeInput(**{k: v for k, v in form.cleaned_data.items()})
        try:
            change = services.change_create(actor=request.user, data=data)
        except services.ChangeError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request, f"{change.number} filed as a draft. Tick its checklist, then submit it."
            )
            return redirect("change-detail", pk=change.pk)
    context = {"form": form, "templates": templates, "template": chosen}
    return render(request, "changes/form.html", context, status=400 if form.errors else 200)


@login_required
@right_needed(Right.CHANGE_CREATE)
def change_edit(request, pk: int):
    change = _detail(request, pk)
    refusal = rules.explained(rules.edit_refusal(request.user, change))
    if refusal:
        return forbidden(request, reason=refusal)
    form = ChangeRequestForm(request.POST or None, instance=change)
    if request.method == "POST" and form.is_valid():
        try:
            change = services.change_update(actor=request.user, change=change, data=dict(form.cleaned_data))
        except services.ChangeError as error:
            form.add_error(None, error)
        else:
            if change.decisions_dismissed:
                messages.warning(
                    request,
                    f"Saved as revision {change.revision}: {change.decisions_dismissed} earlier decision(s) "
                    "were dismissed and the approvers are asked again.",
                )
            else:
                messages.success(request, "Saved.")
            return redirect("change-detail", pk=change.pk)
    return render(
        request, "changes/form.html", {"form": form, "change": change}, status=400 if form.errors else 200
    )


@login_required
def change_detail(request, pk: int):
    change = _detail(request, pk, selectors.change_shown)
    return render(request, "changes/detail.html", _detail_context(request, change))


def _detail_context(request, change, **forms) -> dict:
    summary = selectors.change_quorum(change)
    # Grouped by the list an item first appears in, so added items (migrations) join their group.
    checklist = sorted(
        change.checklist.all(), key=lambda item: (PHASE_ORDER.index(item.phases[0]), item.position)
    )
    done = sum(1 for item in checklist if item.done)
    comments = selectors.change_comments(change)
    gates = selectors.deploy_gates(change, summary)
    history = selectors.change_timeline(change)
    _checklist_marked(request, change, checklist, history)
    _checklist_drawn(checklist)
    context = {
        "change": change,
        "summary": summary,
        "review": selectors.change_review(change) if change.review_pending else None,
        "actions": selectors.change_actions(request.user, change),
        "my_stale_approval": selectors.stale_approval_of(request.user, change),
        "contents": selectors.change_contents(change),
        "shipped_in": list(change.shipped_in.select_related("change").only(*SHIPPED_IN_SHOWS)),
        "gates": gates,
        "next_slot": _next_slot(change),
        "checklist": checklist,
        "checklist_percent": round(100 * done / len(checklist)) if checklist else 0,
        "history": history,
        "decision_form": forms.get("decision_form") or DecisionForm(capacities=request.user.capacity_names()),
        "comment_form": forms.get("comment_form") or CommentForm(),
        "cancel_form": forms.get("cancel_form") or CancelForm(),
        "threads": [
            (c, [r for r in comments if r.parent_id == c.pk]) for c in comments if c.parent_id is None
        ],
    }
    for part in hooks.change_page.send(change=change, user=request.user, gates=gates):
        context.update(part)
    if "custody" not in context:
        context["custody"] = _custody_of_records(change)
    context.setdefault("deployments", [])
    context.setdefault("deploy", None)
    return context


def _custody_of_records(change) -> dict | None:
    """The chain of custody as the records say, when no deployment checked it in the repository
    (the page's other parts may bring that); none before the change is approved."""
    from changes import custody

    if not change.approved_commit:
        return None
    return {"links": custody.chain(change), "checked_at": None, "deployment": None}


def _next_slot(change):
    """The slot "Take it" would book, for an approved change not scheduled yet."""
    from changes.calendar import next_free_slot

    if change.status != ChangeStatus.APPROVED:
        return None
    return next_free_slot(change, now=clock.now())


def _mark_tickable(request, change, items) -> None:
    """Whether the viewer may tick each item: the service's own predicate (changes.rules)."""
    for item in items:
        item.tickable = rules.tick_refusal(request.user, change, item) is None


def _checklist_marked(request, change, items, history=None) -> None:
    """What the checklist's items show: whether the viewer may tick each, and who unticked it after
    approval and when (from the change's history, read once for the page; a single item re-rendered
    after a tick reads its own)."""
    _mark_tickable(request, change, items)
    from changes.integrations import CONNECTED

    if history is None:
        history = selectors.change_history(change).filter(action="change.checklist_untick")
    unticked = selectors.unticked_after_approval(history)
    for item in items:
        item.unticked_after_approval = unticked.get(item.key)
        item.connected = item.integration in CONNECTED


def _checklist_drawn(items) -> None:
    """Draws the items the viewer may not tick from the fragments cache (`item.drawn`): they hold
    no form, so nothing of the viewer; the others are drawn with the page."""
    fixed = [item for item in items if not item.tickable]
    drawn = fragments.render_each("changes/_checklist_item.html", "item", fixed, _item_shows)
    for item, html in zip(fixed, drawn, strict=True):
        item.drawn = html


def _item_shows(item) -> list:
    untick = item.unticked_after_approval
    by = item.done_by.display_name if item.done_by else None
    return [
        item.pk,
        item.done,
        item.text,
        item.integration,
        item.connected,
        item.evidence,
        item.done_at,
        by,
        untick and (untick.actor_name, untick.created_at),
    ]


def _item_drawn(request, change, item, *, error: str = ""):
    """One checklist item as htmx swaps it in after a tick, with the error that refused it (400)."""
    _checklist_marked(request, change, [item])
    context = {"item": item, "change": change, "error": error}
    return render(request, "changes/_checklist_item.html", context, status=400 if error else 200)


def _act(request, pk: int, act, success: str):
    change = _detail(request, pk)
    try:
        act(change)
    except services.ChangeError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, success.format(number=change.number))
    return redirect("change-detail", pk=pk)


@login_required
@require_POST
@right_needed(Right.CHANGE_CREATE)
def change_submit(request, pk: int):
    return _act(
        request, pk, lambda c: services.change_submit(actor=request.user, change=c), "{number} submitted."
    )


@login_required
@require_POST
@right_needed(Right.CHANGE_CREATE)
def change_unschedule(request, pk: int):
    return _act(
        request,
        pk,
        lambda c: services.change_unschedule(actor=request.user, change=c),
        "{number} unscheduled: it waits for a new slot.",
    )


@login_required
@require_POST
@right_needed(Right.CHANGE_CREATE)
def change_take_next_slot(request, pk: int):
    """Books the change into the next free slot of its environment (from this minute on)."""
    from changes.calendar import next_free_slot

    def take(change):
        slot = next_free_slot(change, now=clock.now())
        if slot is None:
            raise services.ChangeError("No free slot of an hour in the next three months: see the calendar.")
        return services.change_schedule(actor=request.user, change=change, start=slot.start, end=slot.end)

    return _act(request, pk, take, "{number} is scheduled into the next free slot.")


@login_required
@require_POST
@right_needed(Right.CHANGE_CREATE)
def change_cancel(request, pk: int):
    form = CancelForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the change is cancelled.")
        return redirect("change-detail", pk=pk)
    reason = form.cleaned_data["reason"]
    return _act(
        request,
        pk,
        lambda c: services.change_cancel(actor=request.user, change=c, reason=reason),
        "{number} cancelled.",
    )


@login_required
@require_POST
@right_needed(Right.CHANGE_APPROVE)
def change_decide(request, pk: int):
    change = _detail(request, pk)
    if not request.user.has_perm(Right.CHANGE_APPROVE):
        return forbidden(request, reason=missing_right_message(Right.CHANGE_APPROVE))
    form = DecisionForm(request.POST, capacities=request.user.capacity_names())
    verdict = mfa.check_form_code(request, form) if form.is_valid() else None
    if verdict is not None and verdict.ok:
        try:
            services.change_decide(
                actor=request.user,
                change=change,
                decision=form.cleaned_data["decision"],
                capacity=form.cleaned_data["capacity"] or "",
                comment=form.cleaned_data["comment"],
                second_factor=mfa.device_words(verdict.device),
            )
        except services.ChangeError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Your decision is recorded.")
            return redirect("change-detail", pk=pk)
    change = _detail(request, pk)
    return render(
        request, "changes/detail.html", _detail_context(request, change, decision_form=form), status=400
    )


@login_required
@require_POST
@right_needed(Right.CHANGE_CREATE)
def checklist_tick(request, pk: int, item_id: int):
    change = _detail(request, pk)
    if not request.user.has_perm(Right.CHANGE_CREATE):
        return forbidden(request, reason=missing_right_message(Right.CHANGE_CREATE))
    item = get_object_or_404(ChecklistItem, pk=item_id, change=change)
    form = ChecklistTickForm(request.POST)
    if not form.is_valid():
        error = " ".join(m for messages_ in form.errors.values() for m in messages_)
        return _item_drawn(request, change, item, error=f"Not saved: {error}")
    try:
        item = services.checklist_item_set(
            actor=request.user,
            item=item,
            done=form.cleaned_data.get("done", False),
            evidence=form.cleaned_data.get("evidence", ""),
        )
    except services.ChangeError as error:
        if request.htmx:
            return _item_drawn(request, change, item, error=" ".join(error.messages))
        messages.error(request, " ".join(error.messages))
        return redirect("change-detail", pk=pk)
    if request.htmx:
        return _item_drawn(request, change, item)
    return redirect(f"{change.get_absolute_url()}#checklist")


@login_required
@require_POST
@right_needed(Right.CHANGE_CREATE)
def comment_add(request, pk: int):
    change = _detail(request, pk)
    if not request.user.has_perm(Right.CHANGE_CREATE):
        return forbidden(request, reason=missing_right_message(Right.CHANGE_CREATE))
    form = CommentForm(request.POST)
    if form.is_valid():
        parent_id = form.cleaned_data["parent"]
        parent = Comment.objects.filter(pk=parent_id).first() if parent_id else None
        if parent_id and parent is None:
            form.add_error("body", "The comment you replied to no longer exists.")
            return render(
                request,
                "changes/detail.html",
                _detail_context(request, change, comment_form=form),
                status=400,
            )
        try:
            services.comment_add(
                actor=request.user, change=change, body=form.cleaned_data["body"], parent=parent
            )
        except services.ChangeError as error:
            form.add_error("body", error)
        else:
            return redirect(f"{change.get_absolute_url()}#comments")
    return render(
        request, "changes/detail.html", _detail_context(request, change, comment_form=form), status=400
    )
