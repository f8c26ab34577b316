"""Reads of the audit trail, scoped to what the viewer may see."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from portal.models import ApiToken, AuditEvent, BreakGlassSession, Notification, User
from portal.roles import Right, has_right
from portal.services import GENESIS_HASH


def audit_events_visible_to(user: User | AnonymousUser) -> QuerySet[AuditEvent]:
    """The events this user may read: all of them with the audit right, none otherwise."""
    if not has_right(user, Right.AUDIT_VIEW):
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

    def as_dict(self) -> dict[str, Any]:
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


def break_glass_sessions_visible_to(user: User | AnonymousUser) -> QuerySet[BreakGlassSession]:
    """Every session, for those who read the audit trail (sessions are exceptions in every report)
    and for administrators (any of them may end a colleague's)."""
    sessions = BreakGlassSession.objects.select_related("user", "closed_by")
    if has_right(user, Right.AUDIT_VIEW) or has_right(user, Right.BREAK_GLASS_OPEN):
        return sessions
    return sessions.none()


def api_tokens_of(user: User) -> QuerySet[ApiToken]:
    # ApiToken's manager is knox's, untyped.
    tokens: QuerySet[ApiToken] = ApiToken.objects.filter(user=user).order_by("-created")
    return tokens
