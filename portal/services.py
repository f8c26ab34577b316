"""Writes that belong to the portal itself: the audit trail and outgoing notifications.

Every state change anywhere in Greenlight calls `audit_record` inside the transaction that makes
the change, so the change and its audit event commit or roll back together.
"""

import ipaddress
import json
import logging
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction

from portal import clock, context
from portal.models import AuditEvent, Notification

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# Any constant works; it names the one lock every audit append takes on PostgreSQL.
_AUDIT_LOCK_KEY = 0x6175646974  # "audit"

SYSTEM_ACTOR_NAME = "Greenlight"


class AuditOutsideTransactionError(RuntimeError):
    pass


def audit_record(
    *,
    actor,
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
    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    event = AuditEvent(
        created_at=clock.now(),
        actor_id=getattr(actor, "pk", None),
        actor_name=_actor_name(actor)[:150],
        action=action[:100],
        object_type=object_type[:100],
        object_id=str(object_id)[:64],
        object_repr=str(object_repr)[:200],
        before=_as_json(before),
        after=_as_json(after),
        ip=_normalised_ip(request.ip if request else None),
        user_agent=(request.user_agent if request else "")[:500],
        request_id=request.request_id if request else "",
        prev_hash=last or GENESIS_HASH,
    )
    event.hash = event.compute_hash()
    event.save(force_insert=True)
    return event


def _actor_name(actor) -> str:
    if actor is None:
        return SYSTEM_ACTOR_NAME
    display = getattr(actor, "display_name", None) or str(actor)
    username = getattr(actor, "username", "")
    return f"{display} ({username})" if username and display != username else display


def _as_json(value: dict[str, Any] | None) -> Any:
    """The value as the database will give it back, so the hash is the same before and after."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _normalised_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def notification_send(*, channel: str, recipient: str, subject: str, body: str) -> Notification:
    """Queues a message; a task delivers it after the caller's transaction commits."""
    from portal.tasks import notification_deliver

    if channel not in Notification.Channel.values:
        raise ValueError(f"unknown notification channel {channel!r}")
    request = context.current()
    notification = Notification.objects.create(
        channel=channel,
        recipient=recipient[:254],
        subject=subject[:200],
        body=body,
        created_at=clock.now(),
        request_id=request.request_id if request else "",
    )
    transaction.on_commit(lambda: notification_deliver.delay(notification.pk))
    return notification


@transaction.atomic
def notification_test_send(*, actor, channel: str, recipient: str) -> Notification:
    """A test message an administrator sends to check that a channel is wired up."""
    notification = notification_send(
        channel=channel,
        recipient=recipient,
        subject="Greenlight test notification",
        body=f"{_actor_name(actor)} sent this to check that Greenlight can reach {recipient}.",
    )
    audit_record(
        actor=actor,
        action="notification.test_send",
        target=notification,
        after={"channel": channel, "recipient": recipient},
    )
    return notification
