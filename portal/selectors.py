"""Reads of the audit trail, scoped to what the viewer may see."""

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from portal import chain
from portal.errors import OutsideError
from portal.models import ApiToken, AuditEvent, AuditVerdict, BreakGlassSession, Notification, User
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
    total: int = 0
    head_id: int | None = None
    head_hash: str = ""
    anchor: chain.Anchor | None = None


class _Broken(Exception):
    def __init__(self, event_id: int | None, problem: str):
        super().__init__(problem)
        self.event_id, self.problem = event_id, problem


def audit_chain_verify(*, since: AuditVerdict | None = None, chunk_size: int = 2000) -> ChainVerdict:
    """Walks the chain and names the first event that does not hold, then checks it against the
    newest anchor, so that removing the newest events, or all of them, is named too.

    From the first event, or on from the last event a previous verdict (`since`) found sound,
    after checking that event is still what it was. Reads the primary, never the replica: a
    verdict must describe what is really stored. The anchor is read before the walk, so an anchor
    written meanwhile never names an event the walk could not have seen.
    """
    events = AuditEvent.objects.using("default")
    walk = _Walk(since)
    try:
        anchor = chain.anchor_store().newest()
    except (OSError, ValueError, KeyError, OutsideError) as exc:
        anchor = None
        walk.fail(None, f"the newest anchor could not be read ({exc.__class__.__name__}: {exc})")
    try:
        walk.run(events, chunk_size)
        if anchor is not None:
            _anchor_check(events, anchor)
    except _Broken as broken:
        walk.fail(broken.event_id, broken.problem)
    return ChainVerdict(
        ok=not walk.problem,
        checked=walk.checked,
        first_bad_id=walk.first_bad_id,
        problem=walk.problem,
        total=events.count(),
        head_id=walk.head_id,
        head_hash=walk.expected_prev if walk.head_id else "",
        anchor=anchor,
    )


class _Walk:
    def __init__(self, since: AuditVerdict | None):
        self.since = since
        self.expected_prev = since.head_hash if since else GENESIS_HASH
        self.head_id: int | None = since.head_id if since else None
        self.checked = 0
        self.first_bad_id: int | None = None
        self.problem = ""

    def fail(self, event_id: int | None, problem: str) -> None:
        if not self.problem:
            self.first_bad_id, self.problem = event_id, problem

    def run(self, events: QuerySet[AuditEvent], chunk_size: int) -> None:
        keys = chain.keys().by_id()
        rows = events.order_by("id")
        if self.since is not None and self.head_id is not None:
            verified = events.filter(id=self.head_id).values_list("hash", flat=True).first()
            if verified != self.since.head_hash:
                raise _Broken(
                    self.head_id,
                    f"event {self.head_id}, sound when verified at {self.since.ran_at:%Y-%m-%d %H:%M} UTC, "
                    "is gone or changed",
                )
            rows = rows.filter(id__gt=self.head_id)
        first_keyed = events.exclude(key_id="").order_by("id").values_list("id", flat=True).first()
        fields = ["id", "prev_hash", "hash", *AuditEvent.HASHED_FIELDS]
        for row in rows.values(*fields).iterator(chunk_size=chunk_size):
            event = AuditEvent(**row)
            self._check(event, keys, first_keyed)
            self.expected_prev, self.head_id = event.hash, event.id
            self.checked += 1

    def _check(self, event: AuditEvent, keys: dict[str, str], first_keyed: int | None) -> None:
        named = f"event {event.id} ({event.action})"
        if event.prev_hash != self.expected_prev:
            raise _Broken(
                event.id,
                f"{named} does not follow the event before it: an event was removed, inserted or "
                "altered before it",
            )
        if not event.key_id and first_keyed is not None and event.id > first_keyed:
            raise _Broken(
                event.id,
                f"{named} has an unkeyed hash after keyed hashes began: it was written by someone "
                "without the audit key",
            )
        key = keys.get(event.key_id, "") if event.key_id else ""
        if event.key_id and not key:
            raise _Broken(
                event.id,
                f"{named} was hashed with a key this installation does not hold (key id "
                f"{event.key_id}): list it in AUDIT_PREVIOUS_KEYS, or the event was forged",
            )
        if event.compute_hash(key) != event.hash:
            raise _Broken(
                event.id,
                f"{named} was altered after it was written: its contents no longer match its hash",
            )


def _anchor_check(events: QuerySet[AuditEvent], anchor: chain.Anchor) -> None:
    when = f"the anchor written at {anchor.written_at:%Y-%m-%d %H:%M} UTC ({anchor.where})"
    anchored = events.filter(id=anchor.event_id).values_list("hash", flat=True).first()
    if anchored is None:
        last = events.order_by("-id").values_list("id", flat=True).first()
        if last is None:
            raise _Broken(
                None,
                f"the trail is empty, but {when} names event {anchor.event_id} of {anchor.count}: "
                "the trail was truncated",
            )
        if last < anchor.event_id:
            raise _Broken(
                last,
                f"the trail ends at event {last}, but {when} names event {anchor.event_id}: the newest "
                "events were removed",
            )
        raise _Broken(anchor.event_id, f"event {anchor.event_id}, named by {when}, is missing")
    if anchored != anchor.hash:
        raise _Broken(
            anchor.event_id,
            f"event {anchor.event_id} does not match {when}: the chain was rewritten up to it",
        )
    count = events.filter(id__lte=anchor.event_id).count()
    if count != anchor.count:
        raise _Broken(
            anchor.event_id,
            f"{when} counted {anchor.count} events up to event {anchor.event_id}; the trail has "
            f"{count}: events were removed",
        )


def audit_verdict_latest() -> AuditVerdict | None:
    return AuditVerdict.objects.using("default").order_by("-id").first()


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
