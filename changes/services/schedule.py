"""When changes deploy: a change's slot, each environment's windows and freezes."""

from datetime import datetime, time
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.db import transaction

from catalogue.models import Environment
from changes import integrations
from changes.choices import ChangeType
from changes.models import ChangeRequest, DeploymentWindow, Freeze
from changes.rules import ChangeError, refuse, schedule_refusal, unschedule_refusal
from changes.services.base import S, SlotRefused, _locked, _notify, _transition
from portal import clock
from portal.models import User
from portal.roles import Right, require_right
from portal.services import audit_record

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _Inside(TypedDict):
        scheduled_inside: list[ChangeRequest]

    # A freeze just made, with the changes already scheduled inside it (the API and the page name them).
    NewFreeze = WithAnnotations[Freeze, _Inside]


def _locked_environment(environment_id: int) -> Environment:
    """Locks the environment's row: its schedule, windows and freezes change one writer at a time,
    so two people taking the same slot at once cannot both have it."""
    return Environment.objects.select_for_update().get(pk=environment_id)


@transaction.atomic
def change_schedule(*, actor: User, change: ChangeRequest, start: datetime, end: datetime) -> ChangeRequest:
    """Puts an approved change (or moves a scheduled one) into a slot that a window allows, no
    freeze covers and no other change holds; a refusal says why and suggests the next free slot."""
    from changes.calendar import FARTHEST_AHEAD, Calendar, Slot

    change = _locked(change)
    refuse(schedule_refusal(actor, change))
    if end <= start:
        raise ChangeError("window_end: the slot must end after it starts.")
    if end > clock.now() + FARTHEST_AHEAD:
        raise ChangeError(f"window_end: a change is scheduled at most {FARTHEST_AHEAD.days} days ahead.")
    environment = _locked_environment(change.environment_id)
    calendar = Calendar.of(environment, excluding_change_id=change.pk)
    slot, now = Slot(start, end), clock.now()
    emergency = change.change_type == ChangeType.EMERGENCY
    refusal = calendar.refusal(slot, now=now, emergency=emergency)
    if refusal:
        suggestion = calendar.next_slot(end - start, after=max(start, now), emergency=emergency)
        hint = (
            f" The next free slot is {suggestion.text(calendar.zone)}."
            if suggestion
            else " No slot of that length is free in the next three months."
        )
        raise SlotRefused(refusal + hint, next_slot=suggestion)
    before = {"scheduled_start": change.scheduled_start, "scheduled_end": change.scheduled_end}
    # An emergency change may go through a freeze; it is then an exception in every report.
    freeze = calendar.freeze_over(slot) if emergency else None
    change.freeze_override = freeze.reason if freeze else ""
    change.scheduled_start, change.scheduled_end = start, end
    change.updated_at = now
    change.save(update_fields=["scheduled_start", "scheduled_end", "freeze_override", "updated_at"])
    booked = {
        "scheduled_start": start,
        "scheduled_end": end,
        **({"freeze_override": freeze.reason} if freeze else {}),
    }
    when = slot.text(calendar.zone)
    integrations.checklist_prove(change=change, integration="schedule", evidence=f"Scheduled for {when}")
    if change.status == S.APPROVED:
        _transition(change, S.SCHEDULED, actor=actor, after=booked)
        _notify(
            change,
            f"{change.number} scheduled for {when}",
            f"{change.title} deploys to {environment} {when}.",
        )
    else:
        audit_record(
            actor=actor,
            action="change.rescheduled",
            target=change,
            before=before,
            after=booked,
        )
        _notify(
            change, f"{change.number} moved to {when}", f"{change.title} now deploys to {environment} {when}."
        )
    return change


@transaction.atomic
def change_unschedule(*, actor: User, change: ChangeRequest) -> ChangeRequest:
    """Gives the slot up: the change is approved again, waiting for a new one."""
    change = _locked(change)
    refuse(unschedule_refusal(actor, change))
    _transition(change, S.APPROVED, actor=actor, note="unscheduled")
    _notify(change, f"{change.number} unscheduled", f"{change.title} waits for a new slot.")
    return change


@transaction.atomic
def window_create(
    *, actor: User, environment: Environment, weekdays: list[int], start_time: time, end_time: time
) -> DeploymentWindow:
    require_right(actor, Right.WINDOW_MANAGE)
    if not weekdays or any(not isinstance(d, int) or not 0 <= d <= 6 for d in weekdays):
        raise ChangeError("weekdays: list days of the week as numbers, 0 = Monday to 6 = Sunday.")
    if end_time <= start_time:
        raise ChangeError("end_time: a window ends after it starts, on the same day.")
    environment = _locked_environment(environment.pk)
    window = DeploymentWindow.objects.create(
        environment=environment,
        weekdays=sorted(set(weekdays)),
        start_time=start_time,
        end_time=end_time,
        created_by=actor,
        created_at=clock.now(),
    )
    audit_record(actor=actor, action="window.create", target=window, after=_window_snapshot(window))
    return window


def _window_snapshot(window: DeploymentWindow) -> dict[str, Any]:
    return {
        "environment": window.environment.name,
        "weekdays": window.weekdays,
        "start_time": window.start_time.isoformat(timespec="minutes"),
        "end_time": window.end_time.isoformat(timespec="minutes"),
        "time_zone": window.environment.time_zone,
    }


@transaction.atomic
def window_delete(*, actor: User, window: DeploymentWindow) -> None:
    require_right(actor, Right.WINDOW_MANAGE)
    _locked_environment(window.environment_id)
    audit_record(actor=actor, action="window.delete", target=window, before=_window_snapshot(window))
    window.delete()


@transaction.atomic
def freeze_create(
    *, actor: User, environment: Environment, starts_at: datetime, ends_at: datetime, reason: str
) -> "NewFreeze":
    """Freezes an environment. It may not overlap another freeze there (change that one
    instead); changes already scheduled inside it are named and their people told to move."""
    from changes.calendar import FARTHEST_AHEAD, HOLDS_SLOT

    require_right(actor, Right.FREEZE_MANAGE)
    if not reason.strip():
        raise ChangeError("reason: say why the environment is frozen.")
    if ends_at <= starts_at:
        raise ChangeError("ends_at: a freeze ends after it starts.")
    if ends_at <= clock.now():
        raise ChangeError("ends_at: that freeze would be over already.")
    if ends_at > clock.now() + FARTHEST_AHEAD:
        raise ChangeError(
            f"ends_at: a freeze reaches at most {FARTHEST_AHEAD.days} days ahead; "
            "freeze what follows nearer the time."
        )
    environment = _locked_environment(environment.pk)
    clash = environment.freezes.filter(starts_at__lt=ends_at, ends_at__gt=starts_at).first()
    if clash:
        raise ChangeError(
            f"It overlaps the freeze of {clash.starts_at:%Y-%m-%d %H:%M}-{clash.ends_at:%Y-%m-%d %H:%M} UTC "
            f"({clash.reason}): change that freeze instead.",
            conflict=True,
        )
    freeze = Freeze.objects.create(
        environment=environment,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason.strip(),
        created_by=actor,
        created_at=clock.now(),
    )
    inside = list(
        ChangeRequest.objects.filter(
            environment=environment,
            status__in=HOLDS_SLOT,
            scheduled_start__lt=ends_at,
            scheduled_end__gt=starts_at,
        )
    )
    audit_record(
        actor=actor,
        action="freeze.create",
        target=freeze,
        after={**_freeze_snapshot(freeze), "scheduled_inside": [c.number for c in inside]},
    )
    for change in inside:
        _notify(
            change,
            f"{change.number} is scheduled inside a freeze",
            f"{environment} is frozen from {starts_at:%Y-%m-%d %H:%M} to {ends_at:%Y-%m-%d %H:%M} UTC "
            f"({freeze.reason}). Move {change.number} to another slot.",
        )
    made = cast("NewFreeze", freeze)
    made.scheduled_inside = inside
    return made


def _freeze_snapshot(freeze: Freeze) -> dict[str, Any]:
    return {
        "environment": freeze.environment.name,
        "starts_at": freeze.starts_at,
        "ends_at": freeze.ends_at,
        "reason": freeze.reason,
    }


@transaction.atomic
def freeze_delete(*, actor: User, freeze: Freeze) -> None:
    require_right(actor, Right.FREEZE_MANAGE)
    _locked_environment(freeze.environment_id)
    audit_record(actor=actor, action="freeze.delete", target=freeze, before=_freeze_snapshot(freeze))
    freeze.delete()
