"""Portal tasks: notification delivery and its reconciler, and beat's heartbeat."""

import logging

from celery import shared_task

from portal import heartbeat, notify, services
from portal.models import Notification

logger = logging.getLogger(__name__)


def retry_delay(attempts: int) -> int:
    """Exponential backoff: 10 s, 20 s, 40 s ... at most 10 minutes."""
    return min(5 * 2**attempts, 600)


@shared_task(
    name="portal.notification_deliver",
    bind=True,
    acks_late=True,
    max_retries=services.MAX_DELIVERY_ATTEMPTS - 1,
)
def notification_deliver(self, notification_id: int) -> str:
    """Sends a queued notification; safe to run twice, or after a worker died with it.

    The claim, the send and the outcome are three steps: only the claim and the outcome touch the
    database, each in a short transaction, and the send happens between them with no lock held.
    """
    notification = services.notification_claim(notification_id)
    if notification is None:
        return "skipped"
    try:
        delivered = notify.deliver(
            channel=notification.channel,
            recipient=notification.recipient,
            subject=notification.subject,
            body=notification.body,
        )
    except notify.TransientDeliveryError as exc:
        outcome = services.notification_outcome(notification_id, error=str(exc))
        if outcome.status == Notification.Status.PENDING:
            raise self.retry(exc=exc, countdown=retry_delay(outcome.attempts)) from None
        logger.error("notification %s failed for good: %s", notification_id, exc)
        return outcome.status
    except notify.DeliveryError as exc:
        logger.error("notification %s refused: %s", notification_id, exc)
        return services.notification_outcome(notification_id, error=str(exc), permanent=True).status
    except Exception as exc:
        # A message that cannot be sent at all (a bad header, a bug) must not stay "sending".
        logger.exception("notification %s could not be sent", notification_id)
        services.notification_outcome(
            notification_id, error=f"{exc.__class__.__name__}: {exc}", permanent=True
        )
        raise
    return services.notification_outcome(notification_id, delivered=delivered).status


@shared_task(name="portal.notifications_reclaim", ignore_result=True)
def notifications_reclaim() -> int:
    """Beat runs this every minute: messages whose task or worker was lost are sent again."""
    return len(services.notifications_reclaim())


@shared_task(name="portal.beat_heartbeat", ignore_result=True, expires=heartbeat.EVERY_SECONDS * 2)
def beat_heartbeat() -> str:
    """Beat sends this every 15 s: the pages and /readyz say when beat was last seen."""
    return heartbeat.stamp(heartbeat.BEAT_KEY)


@shared_task(name="portal.audit_anchor", ignore_result=True, expires=240)
def audit_anchor() -> int | None:
    """Beat runs this every AUDIT_ANCHOR_SECONDS: the chain's head, written where it stays."""
    anchor = services.audit_anchor_write()
    return anchor.event_id if anchor else None


@shared_task(name="portal.audit_verify", ignore_result=True, expires=240)
def audit_verify(full: bool = False) -> bool:
    """Beat runs this every 5 minutes (on from the last sound event) and daily in full: the
    verdict the audit page and /api/v1/audit/verify/ show."""
    return services.audit_verify_run(full=full).ok
