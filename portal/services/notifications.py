"""Outgoing notifications: queued in the caller's transaction, sent by a task after it commits,
claimed and retried so that a worker that dies with one does not lose it."""

import functools
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import transaction

from portal import clock, context
from portal.models import (
    Notification,
    User,
)
from portal.services.audit import actor_name_of, audit_record

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def notification_send(*, channel: str, recipient: str, subject: str, body: str) -> Notification:
    """Queues a message; a task delivers it after the caller's transaction commits. A broker that
    cannot take the task (Redis down) is logged, not raised: the caller's work is done and its
    other messages are still written, and the reclaimer (beat) sends the pending row later."""
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
    transaction.on_commit(lambda: notification_deliver.delay(notification.pk), robust=True)
    return notification


# A worker that holds a notification longer than this has died with it; it is sent again.
NOTIFICATION_CLAIM_TIMEOUT = timedelta(minutes=5)
MAX_DELIVERY_ATTEMPTS = 6


@transaction.atomic
def notification_claim(notification_id: int) -> Notification | None:
    """Takes a pending notification to send, in a short transaction of its own.

    The send itself happens outside any transaction, so a slow mail server never holds a row lock
    or a connection open; a second worker skips a row another one holds.
    """
    notification = (
        Notification.objects.select_for_update(skip_locked=True)
        .filter(pk=notification_id, status=Notification.Status.PENDING)
        .first()
    )
    if notification is None:
        return None
    notification.status = Notification.Status.SENDING
    notification.attempts += 1
    notification.claimed_at = clock.now()
    notification.save(update_fields=["status", "attempts", "claimed_at"])
    return notification


@transaction.atomic
def notification_outcome(
    notification_id: int, *, delivered: bool | None = None, error: str = "", permanent: bool = False
) -> Notification:
    """Records how a send went: delivered (True), only logged (False), or an error.

    A temporary error puts the message back to pending until it has had MAX_DELIVERY_ATTEMPTS.
    """
    notification = Notification.objects.select_for_update().get(pk=notification_id)
    if delivered is not None:
        notification.status = Notification.Status.SENT if delivered else Notification.Status.LOGGED
        notification.sent_at = clock.now()
        notification.last_error = ""
    elif permanent or notification.attempts >= MAX_DELIVERY_ATTEMPTS:
        notification.status = Notification.Status.FAILED
        notification.last_error = error[:2000]
    else:
        notification.status = Notification.Status.PENDING
        notification.last_error = error[:2000]
    notification.save(update_fields=["status", "sent_at", "last_error"])
    return notification


@transaction.atomic
def notifications_reclaim() -> list[int]:
    """Pending messages whose task was lost, and messages a dead worker held: send them again."""
    from django.db.models import Q

    now = clock.now()
    stale = now - NOTIFICATION_CLAIM_TIMEOUT
    rows = Notification.objects.select_for_update(skip_locked=True).filter(
        Q(status=Notification.Status.SENDING, claimed_at__lt=stale)
        | Q(status=Notification.Status.PENDING, created_at__lt=stale, claimed_at__isnull=True)
        | Q(status=Notification.Status.PENDING, claimed_at__lt=stale)
    )
    ids = list(rows.values_list("pk", flat=True))
    if ids:
        Notification.objects.filter(pk__in=ids).update(status=Notification.Status.PENDING, claimed_at=now)
        from portal.tasks import notification_deliver

        for pk in ids:
            transaction.on_commit(functools.partial(notification_deliver.delay, pk))
    return ids


@transaction.atomic
def notification_test_send(*, actor: User, channel: str, recipient: str) -> Notification:
    """A test message an administrator sends to check that a channel is wired up."""
    notification = notification_send(
        channel=channel,
        recipient=recipient,
        subject="Greenlight test notification",
        body=f"{actor_name_of(actor)} sent this to check that Greenlight can reach {recipient}.",
    )
    audit_record(
        actor=actor,
        action="notification.test_send",
        target=notification,
        after={"channel": channel, "recipient": recipient},
    )
    return notification
