"""The ground every write of a change stands on: its refusals, the lock, the audited move
between statuses, the checklist's copy, notifying the people of a change."""

from collections.abc import Mapping, Sequence
from typing import Any

from changes import integrations, snapshots
from changes.calendar import Slot
from changes.choices import ChangeStatus
from changes.models import ChangeRequest, ChecklistItem
from changes.quorum import reviewed_commit
from changes.rules import ChangeError
from portal import clock
from portal.models import User
from portal.services import audit_record, notification_send

S = ChangeStatus


EDITABLE_FIELDS = (
    "title",
    "description",
    "rollback_plan",
    "change_type",
    "risk",
    "risk_assessment",
    "environment",
    "has_migrations",
    "source_branch",
    "pull_request",
    "version_bump",
    "stakeholder_channels",
    "incident",
    "fixes_forward",
)


class SlotRefused(ChangeError):
    """A slot a change may not deploy in, with the next free one (or None); the API answer
    carries it as `next_slot`."""

    def __init__(self, message: str, *, next_slot: Slot | None) -> None:
        super().__init__(message, conflict=True)
        self.next_slot = next_slot

    @property
    def extra(self) -> dict[str, Any]:
        return {"next_slot": self.next_slot.as_dict() if self.next_slot else None}


def _snapshot(change: ChangeRequest) -> dict[str, Any]:
    data = {
        name: getattr(change, name)
        for name in EDITABLE_FIELDS
        if name not in {"environment", "incident", "fixes_forward"}
    }
    data["environment"] = change.environment.name
    data["target_branch"] = change.target_branch
    data["incident"] = change.incident.number if change.incident is not None else None
    data["fixes_forward"] = change.fixes_forward.number if change.fixes_forward is not None else None
    data["status"] = change.status
    data["revision"] = change.revision
    return data


def _relations(change: ChangeRequest) -> dict[str, list[str]]:
    return {
        "services": sorted(change.services.values_list("name", flat=True)),
        "stakeholders": sorted(change.stakeholders.values_list("username", flat=True)),
    }


def _locked(change: ChangeRequest) -> ChangeRequest:
    return (
        ChangeRequest.objects.select_for_update()
        .select_related("environment__approval_policy")
        .get(pk=change.pk)
    )


def _transition(
    change: ChangeRequest,
    status: str,
    *,
    actor: User | None,
    note: str = "",
    after: dict[str, Any] | None = None,
) -> None:
    if not change.can_transition_to(status):
        raise ChangeError(change.transition_error(status), conflict=True)
    before = change.status
    change.status = status
    now = clock.now()
    change.updated_at = now
    fields = ["status", "updated_at"]
    if before == S.SCHEDULED and status in (S.APPROVED, S.SUBMITTED):
        # Back to waiting: the slot is given up for others.
        change.scheduled_start = change.scheduled_end = None
        fields += ["scheduled_start", "scheduled_end"]
        integrations.checklist_prove(change=change, integration="schedule", evidence="", done=False)
    if status == S.SUBMITTED:
        change.submitted_at = now
        change.approved_commit = ""  # approved again, on whatever commit then
        fields += ["submitted_at", "approved_commit"]
    if status == S.APPROVED:
        change.approved_at = now
        change.approved_commit = commit = reviewed_commit(change)
        fields += ["approved_at", "approved_commit"]
        after = {**(after or {}), **({"commit": commit} if commit else {})}
    change.save(update_fields=fields)
    audit_record(
        actor=actor,
        action=f"change.{status}",
        target=change,
        before={"status": before},
        after={"status": status, **({"note": note} if note else {}), **(after or {})},
    )


def change_move(*, change: ChangeRequest, status: str, actor: User | None = None, note: str = "") -> None:
    """Moves a change the deployment engine carries (deploying, verifying, rolled back, failed),
    audited in the caller's transaction."""
    _transition(_locked(change), status, actor=actor, note=note)
    change.refresh_from_db(fields=["status", "updated_at"])


def _copy_checklist(change: ChangeRequest, items: Sequence[Mapping[str, Any]], start: int = 0) -> None:
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            change=change,
            position=start + i,
            key=item["key"],
            text=item["text"],
            phases=list(item["phases"]),
            integration=item.get("integration", ""),
            vouched_by=item.get("vouched_by", ""),
        )
        for i, item in enumerate(items)
    )
    snapshots.forget(change.pk)  # bulk_create sends no signal


def change_notify(change: ChangeRequest, subject: str, body: str) -> None:
    """Tells the requester, the stakeholders and their channels (the deployment engine's news)."""
    _notify(change, subject, body)


def _notify(change: ChangeRequest, subject: str, body: str, *, stakeholders: bool = True) -> None:
    """The requester, and (unless told otherwise) the stakeholders and their channels."""
    people = {change.requester}
    if stakeholders:
        people |= set(change.stakeholders.all())
    for person in people:
        if person.email:
            notification_send(channel="email", recipient=person.email, subject=subject, body=body)
    if stakeholders:
        for channel in change.stakeholder_channels:
            notification_send(channel="slack", recipient=channel, subject=subject, body=body)
