"""E-mail subscriptions to the public status page: subscribing (double opt-in), confirming,
unsubscribing, and e-mailing every confirmed subscriber each public update.

Nobody learns from the answers whether an address is subscribed: subscribing an address that is
already subscribed answers the same and sends nothing; one still waiting for confirmation gets the
link again, at most once an hour, so the form cannot be used to flood an inbox. One client address
may ask at most SUBSCRIBE_LIMIT times an hour, so the form cannot fill the table either, and
addresses never confirmed are forgotten after UNCONFIRMED_KEPT. Each change to a subscription is
audited as the portal's own act (actor None) with the address masked, since the audit trail keeps
it for good.
"""

import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from incidents import status
from incidents.models import StatusSubscriber, TimelineEntry
from portal import clock
from portal.models import Notification
from portal.services import audit_record, notification_send

logger = logging.getLogger(__name__)

CONFIRM_SUBJECT = "Confirm your subscription to status updates"
# A confirmation link is sent to one address at most this often.
CONFIRM_RESEND_AFTER = timedelta(hours=1)
# How many subscriptions one client address may ask for in each SUBSCRIBE_PERIOD of the clock.
SUBSCRIBE_LIMIT = 5
SUBSCRIBE_PERIOD = timedelta(hours=1)
# A subscription not confirmed within this long is forgotten.
UNCONFIRMED_KEPT = timedelta(days=7)


def public_link(path: str, *, request=None) -> str:
    """The address of a status page path for an e-mail: under PUBLIC_URL when it is set, else the
    address the request came through, else the bare path."""
    if settings.PUBLIC_URL:
        return settings.PUBLIC_URL.rstrip("/") + path
    return request.build_absolute_uri(path) if request is not None else path


def masked(email: str) -> str:
    """'j•••@example.com': enough to tell audit events apart, not enough to write to."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


def normalised_email(value: str) -> str:
    """The address as kept: trimmed and lower-cased (one subscription per mailbox); a ValidationError
    that says what is wrong with anything that is not an address."""
    email = (value or "").strip().lower()
    if not email:
        raise ValidationError("Enter your e-mail address.")
    if len(email) > 254:
        raise ValidationError("That address is too long to be an e-mail address.")
    validate_email(email)
    return email


def subscribe_count_key(ip: str | None, *, at: datetime) -> str:
    """The cache key that counts the subscriptions asked for from the address in the
    SUBSCRIBE_PERIOD holding `at`."""
    return f"status-subscribe:{ip}:{int(at.timestamp()) // int(SUBSCRIBE_PERIOD.total_seconds())}"


def subscribe_throttled(*, ip: str | None) -> timedelta | None:
    """Counts one subscription asked for from the client address: None while it has asked at most
    SUBSCRIBE_LIMIT times in this SUBSCRIBE_PERIOD of the portal clock, else how long until the next
    period. A cache that cannot count lets the request through (each address is still sent a link
    at most once an hour)."""
    now = clock.now()
    period = int(SUBSCRIBE_PERIOD.total_seconds())
    key = subscribe_count_key(ip, at=now)
    try:
        cache.add(key, 0, timeout=period)
        asked = cache.incr(key)
    except Exception:  # the cache's own errors depend on its backend (Redis: ConnectionError)
        logger.warning("status page: subscriptions could not be counted", exc_info=True)
        return None
    return None if asked <= SUBSCRIBE_LIMIT else timedelta(seconds=period - int(now.timestamp()) % period)


@transaction.atomic
def status_subscribe(*, email: str, request=None) -> StatusSubscriber:
    """Subscribes the address pending its confirmation, and e-mails it the confirmation link."""
    email = normalised_email(email)
    now = clock.now()
    subscriber, created = StatusSubscriber.objects.select_for_update().get_or_create(
        email=email, defaults={"token": secrets.token_urlsafe(32), "created_at": now}
    )
    if created:
        audit_record(
            actor=None, action="status_subscriber.subscribe", target=subscriber, object_repr=masked(email)
        )
    elif subscriber.confirmed_at is not None or _confirmation_sent_lately(email, now=now):
        return subscriber
    link = public_link(reverse("status-confirm", args=[subscriber.token]), request=request)
    notification_send(
        channel=Notification.Channel.EMAIL,
        recipient=email,
        subject=CONFIRM_SUBJECT,
        body=render_to_string("status/email_confirm.txt", {"link": link}),
    )
    return subscriber


def _confirmation_sent_lately(email: str, *, now) -> bool:
    return Notification.objects.filter(
        channel=Notification.Channel.EMAIL,
        recipient=email,
        subject=CONFIRM_SUBJECT,
        created_at__gt=now - CONFIRM_RESEND_AFTER,
    ).exists()


def subscriber_by_token(token: str) -> StatusSubscriber | None:
    return StatusSubscriber.objects.filter(token=token).first()


@transaction.atomic
def status_subscription_confirm(*, token: str) -> StatusSubscriber | None:
    """Confirms the subscription the link names (again: nothing changes); None for no such link."""
    subscriber = StatusSubscriber.objects.select_for_update().filter(token=token).first()
    if subscriber is None or subscriber.confirmed_at is not None:
        return subscriber
    subscriber.confirmed_at = clock.now()
    subscriber.save(update_fields=["confirmed_at"])
    audit_record(
        actor=None,
        action="status_subscriber.confirm",
        target=subscriber,
        object_repr=masked(subscriber.email),
        after={"confirmed_at": subscriber.confirmed_at},
    )
    return subscriber


@transaction.atomic
def status_unsubscribe(*, token: str) -> bool:
    """Ends the subscription the link names: the address is forgotten. False for no such link."""
    subscriber = StatusSubscriber.objects.select_for_update().filter(token=token).first()
    if subscriber is None:
        return False
    audit_record(
        actor=None,
        action="status_subscriber.unsubscribe",
        target=subscriber,
        object_repr=masked(subscriber.email),
        before={"confirmed_at": subscriber.confirmed_at},
    )
    subscriber.delete()
    return True


@transaction.atomic
def status_subscribers_purge() -> int:
    """Forgets the addresses whose subscription was not confirmed within UNCONFIRMED_KEPT (beat runs
    it daily), each audited like an unsubscription; returns how many."""
    expired = list(
        StatusSubscriber.objects.select_for_update()
        .filter(confirmed_at__isnull=True, created_at__lt=clock.now() - UNCONFIRMED_KEPT)
        .order_by("pk")
    )
    for subscriber in expired:
        audit_record(
            actor=None,
            action="status_subscriber.purge",
            target=subscriber,
            object_repr=masked(subscriber.email),
            before={"created_at": subscriber.created_at},
        )
    StatusSubscriber.objects.filter(pk__in=[s.pk for s in expired]).delete()
    return len(expired)


@transaction.atomic
def status_update_send(entry_id: int) -> int:
    """E-mails a public update to every confirmed subscriber, one message each, and says so on the
    incident's timeline (not publicly). The entry is locked and that timeline entry looked for
    first, so a second run sends nothing again; returns how many were e-mailed."""
    entry = (
        TimelineEntry.objects.select_for_update(of=("self",))
        .select_related("incident")
        .filter(pk=entry_id, public=True, incident__public=True)
        .first()
    )
    if entry is None or entry.incident.timeline.filter(data__status_update=entry.pk).exists():
        return 0
    update = status.update_of(entry)
    if update is None:
        return 0
    incident = entry.incident
    affected = ", ".join(sorted(s.name for s in incident.services.filter(on_status_page=True)))
    subscribers = list(StatusSubscriber.objects.filter(confirmed_at__isnull=False).order_by("pk"))
    for subscriber in subscribers:
        context = {
            "incident": incident,
            "impact": status.SEVERITY_STATE[incident.severity].label,
            "affected": affected,
            "update": update,
            "page_link": public_link(reverse("status-page")),
            "unsubscribe_link": public_link(reverse("status-unsubscribe", args=[subscriber.token])),
        }
        notification_send(
            channel=Notification.Channel.EMAIL,
            recipient=subscriber.email,
            subject=f"{update.word}: {incident.title}",
            body=render_to_string("status/email_update.txt", context),
        )
    if subscribers:
        from incidents.services import timeline_add

        timeline_add(
            incident,
            TimelineEntry.Kind.LINK,
            f"Status page update e-mailed to {len(subscribers)} subscriber{'s' * (len(subscribers) != 1)}.",
            status_update=entry.pk,
        )
    return len(subscribers)
