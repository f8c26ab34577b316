"""Reads of the audit trail, scoped to what the viewer may see."""

from dataclasses import dataclass

from django.db.models import QuerySet

from portal.models import AuditEvent, Notification
from portal.services import GENESIS_HASH

AUDIT_VIEW_PERMISSION = "portal.view_auditevent"


def audit_events_visible_to(user) -> QuerySet[AuditEvent]:
    """The events this user may read: all of them with the audit permission, none otherwise."""
    if not user.is_authenticated or not user.has_perm(AUDIT_VIEW_PERMISSION):
        return AuditEvent.objects.none()
    return AuditEvent.objects.all()


def notifications_recent(limit: int = 5) -> list[Notification]:
    return list(Notification.objects.order_by("-id")[:limit])


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    problem: str = ""

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_id": self.first_bad_id,
            "problem": self.problem,
        }


def audit_chain_verify(chunk_size: int = 2000) -> ChainVerdict:
    """Walks the chain from the first event and names the first one that does not hold.

    Reads the primary, never the replica: a verdict must describe what is really stored.
    """
    expected_prev = GENESIS_HASH
    checked = 0
    fields = ["id", "prev_hash", "hash", *AuditEvent.HASHED_FIELDS]
    rows = AuditEvent.objects.using("default").order_by("id").values(*fields)
    for row in rows.iterator(chunk_size=chunk_size):
        event = AuditEvent(**row)
        if event.prev_hash != expected_prev:
            return ChainVerdict(
                ok=False,
                checked=checked,
                first_bad_id=event.id,
                problem=(
                    f"event {event.id} ({event.action}) does not follow the event before it: "
                    "an event was removed, inserted or altered before it"
                ),
            )
        if event.compute_hash() != event.hash:
            return ChainVerdict(
                ok=False,
                checked=checked,
                first_bad_id=event.id,
                problem=(
                    f"event {event.id} ({event.action}) was altered after it was written: "
                    "its contents no longer match its hash"
                ),
            )
        expected_prev = event.hash
        checked += 1
    return ChainVerdict(ok=True, checked=checked)
