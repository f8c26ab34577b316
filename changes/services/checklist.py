"""Ticking and unticking a change's checklist items."""

from datetime import datetime

from django.db import transaction

from changes.choices import APPROVED_ONWARDS
from changes.models import ChangeRequest, ChecklistItem
from changes.rules import refuse, tick_refusal
from changes.services.base import _locked
from portal import clock
from portal.models import User
from portal.services import audit_record, notification_send


@transaction.atomic
def checklist_item_set(*, actor: User, item: ChecklistItem, done: bool, evidence: str = "") -> ChecklistItem:
    """A person ticks (or unticks) an item that is theirs to vouch for, with evidence: the
    requester or an approver of the change, or the holder of the sign-off the item names.

    The change is locked first, so no decision is dismissed or replaced while the tick is checked.
    Unticking after approval takes back what the approvers relied on: the audit event says so and
    the requester and the approvers are told.
    """
    change = _locked(item.change)
    item = ChecklistItem.objects.select_for_update().get(pk=item.pk)
    refuse(tick_refusal(actor, change, item))
    if not done and not item.done:
        return item  # nothing to take back: no event, nobody told
    before = {"item": item.key, "done": item.done, "evidence": item.evidence}
    now = clock.now()
    item.done = done
    item.done_by = actor if done else None
    item.done_at = now if done else None
    item.evidence = evidence.strip() if done else ""
    item.save(update_fields=["done", "done_by", "done_at", "evidence"])
    after = {"item": item.key, "done": done, "evidence": item.evidence}
    if not done:
        after["after_approval"] = change.status in APPROVED_ONWARDS
    audit_record(
        actor=actor,
        action="change.checklist_tick" if done else "change.checklist_untick",
        target=change,
        before=before,
        after=after,
    )
    if not done and after["after_approval"]:
        _untick_told(change, item, actor, now)
    return item


def _untick_told(change: ChangeRequest, item: ChecklistItem, actor: User, at: datetime) -> None:
    """The requester and the approvers hear of an item unticked after they relied on it."""
    blocks = " It stands in the way of deploying until it is ticked again." if item.gates_deploy else ""
    people = User.objects.filter(pk__in={change.requester_id, *change.standing_approver_ids}).exclude(
        pk=actor.pk
    )
    for person in people:
        if person.email:
            notification_send(
                channel="email",
                recipient=person.email,
                subject=f"{change.number}: “{item.text}” unticked after approval",
                body=f"{actor.display_name} unticked “{item.text}” at {at:%Y-%m-%d %H:%M} UTC, after "
                f"{change.number} ({change.title}) was approved.{blocks} {change.get_absolute_url()}",
            )
