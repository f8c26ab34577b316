"""The audit trail's one writer: every state change anywhere in Greenlight calls `audit_record`
inside the transaction that makes the change, so the change and its audit event commit or roll
back together."""

import dataclasses
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from portal import chain, clock, context
from portal.models import AccessPolicy, AuditEvent, AuditVerdict, Notification, User

if TYPE_CHECKING:
    from portal.selectors import ChainVerdict

logger = logging.getLogger(__name__)


GENESIS_HASH = "0" * 64
# Any constant works; it names the one lock every audit append takes on PostgreSQL.
_AUDIT_LOCK_KEY = 0x6175646974  # "audit"

SYSTEM_ACTOR_NAME = "Greenlight"


class AuditOutsideTransactionError(RuntimeError):
    pass


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    object_repr: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Appends one event to the audit chain. Must run inside the caller's transaction.

    Appends are serialised (an advisory transaction lock on PostgreSQL; SQLite's IMMEDIATE
    transactions hold the write lock already) so concurrent writers keep a single chain.
    `actor` is a user, or None for Greenlight itself (a task, the scheduler).
    """
    if not connection.in_atomic_block:
        raise AuditOutsideTransactionError(
            "audit_record must run inside the transaction of the change it records"
        )
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or target.pk
        object_repr = object_repr or str(target)
    request = context.current()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])
    # The primary, always: the chain continues from what is really stored, never a lagging copy.
    last = AuditEvent.objects.using("default").order_by("-id").values_list("hash", flat=True).first()
    key = chain.keys().current
    event = AuditEvent(
        created_at=clock.now(),
        actor_id=getattr(actor, "pk", None),
        actor_name=actor_name_of(actor)[:150],
        action=action[:100],
        object_type=object_type[:100],
        object_id=str(object_id)[:64],
        object_repr=str(object_repr)[:200],
        before=_as_json(before),
        after=_as_json(after),
        ip=_normalised_ip(request.ip if request else None),
        user_agent=(request.user_agent if request else "")[:500],
        request_id=request.request_id if request else "",
        break_glass_session_id=_break_glass_id(actor),
        key_id=chain.key_id_of(key),
        prev_hash=last or GENESIS_HASH,
    )
    event.hash = event.compute_hash(key)
    event.save(force_insert=True)
    return event


def _break_glass_id(actor: User | None) -> int | None:
    session = actor.break_glass_session() if actor is not None else None
    return session.pk if session else None


def actor_name_of(actor: User | None) -> str:
    if actor is None:
        return SYSTEM_ACTOR_NAME
    display = getattr(actor, "display_name", None) or str(actor)
    username = getattr(actor, "username", "")
    return f"{display} ({username})" if username and display != username else display


def _as_json(value: dict[str, Any] | None) -> Any:
    """The value exactly as the database will give it back, so its hash holds after a read.

    PostgreSQL's jsonb rewrites numbers (1e16 comes back as 10000000000000000), so there the
    value takes a round trip through jsonb first. NaN and infinity have no JSON form: refused.
    """
    if value is None:
        return None
    text = json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::jsonb::text", [text])
            text = cursor.fetchone()[0]
    return json.loads(text)


def _normalised_ip(value: str | None) -> str | None:
    from portal.middleware import normalised_ip

    return normalised_ip(value)


def audit_anchor_write() -> chain.Anchor | None:
    """Writes the chain's head (its newest event, that event's hash, the count up to it) where the
    application cannot change it afterwards; nothing when the head is the one last anchored.

    Beat runs this every AUDIT_ANCHOR_SECONDS. The anchor's time is the real one, whatever the
    portal's clock says: it orders anchors, and S3 keeps them by it.
    """
    head = AuditEvent.objects.using("default").order_by("-id").values("id", "hash").first()
    if head is None:
        return None
    store = chain.anchor_store()
    newest = store.newest()
    if newest is not None and newest.event_id == head["id"]:
        return newest
    count = AuditEvent.objects.using("default").filter(id__lte=head["id"]).count()
    anchor = chain.Anchor(event_id=head["id"], hash=head["hash"], count=count, written_at=timezone.now())
    anchor = dataclasses.replace(anchor, where=store.put(anchor))
    logger.info("audit chain anchored at event %s (%s events) in %s", anchor.event_id, count, anchor.where)
    return anchor


def audit_verify_run(*, full: bool = False) -> AuditVerdict:
    """Verifies the chain (portal.selectors.audit_chain_verify) and keeps the verdict: on from the
    last sound event the previous run found, or from the first event when `full` (beat runs a full
    walk daily; `manage.py audit verify` always does). A chain that was sound and is no longer is
    announced where break-glass sessions are."""
    from portal.selectors import audit_chain_verify

    previous = AuditVerdict.objects.using("default").order_by("-id").first()
    since = previous if previous is not None and previous.ok and previous.head_id and not full else None
    started = time.monotonic()
    verdict = audit_chain_verify(since=since)
    with transaction.atomic():
        return _verdict_keep(verdict, previous=previous, full=since is None, started=started)


def _verdict_keep(
    verdict: "ChainVerdict", *, previous: AuditVerdict | None, full: bool, started: float
) -> AuditVerdict:
    from portal.services.notifications import notification_send

    anchor = verdict.anchor
    kept = AuditVerdict.objects.create(
        ran_at=clock.now(),
        seconds=round(time.monotonic() - started, 3),
        full=full,
        ok=verdict.ok,
        checked=verdict.checked,
        total=verdict.total,
        head_id=verdict.head_id,
        head_hash=verdict.head_hash,
        first_bad_id=verdict.first_bad_id,
        problem=verdict.problem,
        anchor_event_id=anchor.event_id if anchor else None,
        anchor_written_at=anchor.written_at if anchor else None,
        anchor_where=anchor.where[:500] if anchor else "",
    )
    if not verdict.ok and (previous is None or previous.ok):
        notification_send(
            channel=Notification.Channel.SLACK,
            recipient=AccessPolicy.current().announce_slack_channel,
            subject="The audit trail does not verify",
            body=f"audit verify: {verdict.problem}",
        )
    return kept
