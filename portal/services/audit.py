"""The audit trail's one writer: every state change anywhere in Greenlight calls `audit_record`
inside the transaction that makes the change, so the change and its audit event commit or roll
back together."""

import json
import logging
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models

from portal import clock, context
from portal.models import (
    AuditEvent,
    User,
)

if TYPE_CHECKING:
    pass

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
        prev_hash=last or GENESIS_HASH,
    )
    event.hash = event.compute_hash()
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
