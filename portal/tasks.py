"""Portal tasks: notification delivery and the worker heartbeat."""

import logging

from celery import shared_task
from django.core.cache import cache
from django.db import transaction

from portal import clock, notify
from portal.models import Notification

logger = logging.getLogger(__name__)

HEARTBEAT_CACHE_KEY = "worker-heartbeat"
MAX_DELIVERY_ATTEMPTS = 6


@shared_task(
    name="portal.notification_deliver",
    bind=True,
    acks_late=True,
    max_retries=MAX_DELIVERY_ATTEMPTS - 1,
)
def notification_deliver(self, notification_id: int) -> str:
    """Sends a queued notification once; safe to run twice or after a crash.

    The row is locked while sending, so two workers never both send it; a message that is already
    sent, logged or failed is left alone. Transient failures retry with exponential backoff.
    """
    with transaction.atomic():
        notification = Notification.objects.select_for_update().filter(pk=notification_id).first()
        if notification is None or notification.status != Notification.Status.PENDING:
            return "skipped"
        notification.attempts += 1
        try:
            sent = notify.deliver(
                channel=notification.channel,
                recipient=notification.recipient,
                subject=notification.subject,
                body=notification.body,
            )
        except notify.TransientDeliveryError as exc:
            notification.last_error = str(exc)
            if notification.attempts >= MAX_DELIVERY_ATTEMPTS:
                notification.status = Notification.Status.FAILED
            notification.save(update_fields=["attempts", "last_error", "status"])
            if notification.status == Notification.Status.FAILED:
                logger.error("notification %s failed for good: %s", notification_id, exc)
                return notification.status
            retry = exc
        except notify.DeliveryError as exc:
            notification.status = Notification.Status.FAILED
            notification.last_error = str(exc)
            notification.save(update_fields=["attempts", "last_error", "status"])
            logger.error("notification %s refused: %s", notification_id, exc)
            return notification.status
        else:
            notification.status = Notification.Status.SENT if sent else Notification.Status.LOGGED
            notification.sent_at = clock.now()
            notification.last_error = ""
            notification.save(update_fields=["attempts", "status", "sent_at", "last_error"])
            return notification.status
    # Outside the transaction, so the attempt count is committed before the retry is queued.
    raise self.retry(exc=retry, countdown=min(2**notification.attempts * 5, 600))


@shared_task(name="portal.worker_heartbeat", ignore_result=True)
def worker_heartbeat() -> str:
    """Beat runs this every 30 s; /readyz shows how long ago a worker last ran it."""
    stamp = clock.now().isoformat()
    cache.set(HEARTBEAT_CACHE_KEY, stamp, timeout=None)
    return stamp
