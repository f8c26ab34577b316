"""E-mail subscriptions to the public status page: subscribing (double opt-in), confirming,
unsubscribing, and e-mailing every confirmed subscriber each public update.

Nobody learns from the answers whether an address is subscribed: subscribing an address that is
already subscribed answers the same and sends nothing; one still waiting for confirmation gets the
link again, at most once an hour, so the form cannot be used to flood an inbox. One client address
may ask at most SUBSCRIBE_LIMIT times an hour, so the form cannot fill the table either, and
addresses never confirmed are forgotten after UNCONFIRMED_KEPT. A confirmation link works once and
for CONFIRM_VALID_FOR after it was sent (it carries its time, signed); the subscription's token
changes when it is confirmed, so the link in every update (to unsubscribe) is another, which also
works once: the subscription ends with it. Each change to a subscription is audited as the
portal's own act (actor None) with the address masked, since the audit trail keeps it for good.
"""

import ipaddress
import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
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
# A confirmation link works for this long after it was sent.
CONFIRM_VALID_FOR = timedelta(hours=48)
CONFIRM_SALT = "incidents.status-confirm"
# An unsubscribe link (in every update) works for this long after its e-mail was sent; each update
# carries a fresh one.
UNSUBSCRIBE_VALID_FOR = timedelta(days=60)
UNSUBSCRIBE_SALT = "incidents.status-unsubscribe"


class LinkRefused(Exception):
    """A confirm or unsubscribe link that does not work (any more): `reason` says why in words,
    `status` is the answer's (404 for no such link, 410 for one used or expired)."""

    def __init__(self, reason: str, *, status: int = 404) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


UNKNOWN = "It may have been copied only in part, or the subscription it belonged to has ended."
USED = "It has been used already: each link works once. If you are subscribed, the e-mails come on their own."
EXPIRED = (
    f"It has expired: a confirmation link works for {int(CONFIRM_VALID_FOR.total_seconds() // 3600)} hours. "
    "Subscribe again to receive a new one."
)


UNSUBSCRIBE_EXPIRED = (
    f"It has expired: an unsubscribe link works for {UNSUBSCRIBE_VALID_FOR.days} days. Use the link in "
    "the latest e-mail."
)


def _signed(subscriber: StatusSubscriber, *, salt: str) -> str:
    """What a link carries: the subscription's token and when the link was sent, signed."""
    issued = int(clock.now().timestamp())
    return signing.Signer(salt=salt, sep=".").sign(f"{subscriber.token}.{issued}")


def _token_of(link: str, *, salt: str, valid_for: timedelta, expired: str) -> str:
    """The subscription token a link names; a LinkRefused when it is not one of ours or has
    expired."""
    try:
        value = signing.Signer(salt=salt, sep=".").unsign(link)
    except signing.BadSignature:
        raise LinkRefused(UNKNOWN) from None
    inner, _, issued = value.rpartition(".")
    if not issued.isdigit():
        raise LinkRefused(UNKNOWN)
    if clock.now().timestamp() - int(issued) > valid_for.total_seconds():
        raise LinkRefused(expired, status=410)
    return inner


def confirm_token(subscriber: StatusSubscriber) -> str:
    return _signed(subscriber, salt=CONFIRM_SALT)


def unsubscribe_token(subscriber: StatusSubscriber) -> str:
    return _signed(subscriber, salt=UNSUBSCRIBE_SALT)


def _confirmed_token(token: str) -> str:
    return _token_of(token, salt=CONFIRM_SALT, valid_for=CONFIRM_VALID_FOR, expired=EXPIRED)


def _unsubscribed_token(token: str) -> str:
    return _token_of(
        token, salt=UNSUBSCRIBE_SALT, valid_for=UNSUBSCRIBE_VALID_FOR, expired=UNSUBSCRIBE_EXPIRED
    )


def confirmation_of(token: str) -> StatusSubscriber:
    """The subscription a confirmation link would confirm; a LinkRefused saying why not."""
    subscriber = StatusSubscriber.objects.filter(
        token=_confirmed_token(token), confirmed_at__isnull=True
    ).first()
    if subscriber is None:
        raise LinkRefused(USED, status=410)
    return subscriber


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


def subscribe_network(ip: str | None) -> str:
    """Whom the count is kept for: an IPv4 address, or an IPv6 address's /64 (one subscriber's
    network gets a /64 or more, and may use any address in it)."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def subscribe_count_key(ip: str | None, *, at: datetime) -> str:
    """The cache key that counts the subscriptions asked for from the address's network in the
    SUBSCRIBE_PERIOD holding `at`."""
    period = int(at.timestamp()) // int(SUBSCRIBE_PERIOD.total_seconds())
    return f"status-subscribe:{subscribe_network(ip)}:{period}"


def subscribe_throttled(*, ip: str | None) -> timedelta | None:
    """Counts one subscription asked for from the client's network: None while it has asked at
    most SUBSCRIBE_LIMIT times in this SUBSCRIBE_PERIOD of the portal clock, else how long until
    the next period. A cache that cannot count refuses for a minute: an uncounted form would mail
    any address as often as it is asked."""
    now = clock.now()
    period = int(SUBSCRIBE_PERIOD.total_seconds())
    key = subscribe_count_key(ip, at=now)
    try:
        cache.add(key, 0, timeout=period)
        asked = cache.incr(key)
    except Exception:  # the cache's own errors depend on its backend (Redis: ConnectionError)
        logger.warning("status page: subscriptions could not be counted; refused", exc_info=True)
        return timedelta(minutes=1)
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
    link = public_link(reverse("status-confirm", args=[confirm_token(subscriber)]), request=request)
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
    """The confirmed subscription an unsubscribe link names (a LinkRefused when the link has
    expired)."""
    return StatusSubscriber.objects.filter(
        token=_unsubscribed_token(token), confirmed_at__isnull=False
    ).first()


@transaction.atomic
def status_subscription_confirm(*, token: str) -> StatusSubscriber:
    """Confirms the subscription a confirmation link names, once: its token changes, so the link
    does not work again (a LinkRefused says why it does not work)."""
    subscriber = (
        StatusSubscriber.objects.select_for_update()
        .filter(token=_confirmed_token(token), confirmed_at__isnull=True)
        .first()
    )
    if subscriber is None:
        raise LinkRefused(USED, status=410)
    subscriber.confirmed_at = clock.now()
    subscriber.token = secrets.token_urlsafe(32)
    subscriber.save(update_fields=["confirmed_at", "token"])
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
    """Ends the confirmed subscription the link names: the address is forgotten, and the link
    works no more. False for no such link."""
    subscriber = (
        StatusSubscriber.objects.select_for_update()
        .filter(token=_unsubscribed_token(token), confirmed_at__isnull=False)
        .first()
    )
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
    title = incident.public_title or status.SEVERITY_STATE[incident.severity].label
    subscribers = list(StatusSubscriber.objects.filter(confirmed_at__isnull=False).order_by("pk"))
    for subscriber in subscribers:
        context = {
            "title": title,
            "impact": status.SEVERITY_STATE[incident.severity].label,
            "affected": affected,
            "update": update,
            "page_link": public_link(reverse("status-page")),
            "unsubscribe_link": public_link(
                reverse("status-unsubscribe", args=[unsubscribe_token(subscriber)])
            ),
        }
        notification_send(
            channel=Notification.Channel.EMAIL,
            recipient=subscriber.email,
            subject=f"{update.word}: {title}",
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
