"""Writes that belong to the portal itself: the audit trail and outgoing notifications.

Every state change anywhere in Greenlight calls `audit_record` inside the transaction that makes
the change, so the change and its audit event commit or roll back together.
"""

import functools
import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, models, transaction

from portal import clock, context
from portal.errors import Refusal
from portal.models import (
    AccessPolicy,
    ApiToken,
    AuditEvent,
    BreakGlassSession,
    InboundDelivery,
    Notification,
    User,
    UserCapacity,
)
from portal.roles import CAPACITIES_FORBIDDEN_FOR, Capacity, Right, Role, has_right, missing_right_message

if TYPE_CHECKING:
    from django_otp.plugins.otp_totp.models import TOTPDevice

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
        break_glass_session_id=_break_glass_id(actor),
        prev_hash=last or GENESIS_HASH,
    )
    event.hash = event.compute_hash()
    event.save(force_insert=True)
    return event


def _break_glass_id(actor: User | None) -> int | None:
    session = actor.break_glass_session() if actor is not None else None
    return session.pk if session else None


def _actor_name(actor: User | None) -> str:
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


def inbound_once(*, source: str, delivery_id: str, kind: str) -> InboundDelivery | None:
    """Keeps an inbound delivery in the caller's transaction (so a delivery whose handling fails is
    not kept, and is acted on when sent again); None when it was received before."""
    try:
        with transaction.atomic():
            return InboundDelivery.objects.create(
                source=source, delivery_id=delivery_id, kind=kind[:100], received_at=clock.now()
            )
    except IntegrityError:
        return None


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
        body=f"{_actor_name(actor)} sent this to check that Greenlight can reach {recipient}.",
    )
    audit_record(
        actor=actor,
        action="notification.test_send",
        target=notification,
        after={"channel": channel, "recipient": recipient},
    )
    return notification


class AccessError(Refusal):
    """A grant or session the rules refuse; the message says which rule."""


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    password: str | None,
    role: str,
    reason: str = "",
    **profile: Any,
) -> User:
    """Adds a person with a role. `actor` None is Greenlight itself (the demo seed, SSO sign-up)."""
    if role not in Role.values:
        raise AccessError(f"{role!r} is not a role; choose one of {', '.join(Role.values)}.")
    user = User(username=username, role=role, is_staff=role == Role.ADMIN, **profile)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    audit_record(
        actor=actor,
        action="user.create",
        target=user,
        after={
            "username": username,
            "role": role,
            "reason": reason,
            **{k: str(v) for k, v in profile.items()},
        },
    )
    return user


def _locked_user(user: User) -> User:
    return User.objects.select_for_update().get(pk=user.pk)


@transaction.atomic
def user_role_set(*, actor: User | None, user: User, role: str) -> User:
    """Gives a user a role. Policy administrators only; nobody changes their own. `actor` None is
    Greenlight itself (SSO sign-in maps a group to a role)."""
    if role not in Role.values:
        raise AccessError(f"{role!r} is not a role; choose one of {', '.join(Role.values)}.")
    if actor is not None and actor.pk == user.pk:
        raise AccessError("Nobody changes their own role: ask another policy administrator.")
    user = _locked_user(user)
    before = {"role": user.role}
    if role in CAPACITIES_FORBIDDEN_FOR and user.capacities.exists():
        raise AccessError(f"Revoke {user.username}'s capacities first: a {Role(role).label} holds none.")
    user.role = role
    user.is_staff = role == Role.ADMIN
    user.save(update_fields=["role", "is_staff"])
    user.forget_rights()
    audit_record(actor=actor, action="user.role_set", target=user, before=before, after={"role": role})
    return user


@transaction.atomic
def user_capacity_grant(*, actor: User | None, user: User, capacity: str) -> UserCapacity:
    """Grants a capacity besides the role. `actor` None is Greenlight itself (the demo seed)."""
    if capacity not in Capacity.values:
        raise AccessError(f"{capacity!r} is not a capacity; choose one of {', '.join(Capacity.values)}.")
    if actor is not None and actor.pk == user.pk:
        raise AccessError("Nobody grants themselves a capacity: ask another policy administrator.")
    user = _locked_user(user)
    if capacity in CAPACITIES_FORBIDDEN_FOR.get(user.role, ()):
        raise AccessError(f"A {Role(user.role).label} cannot hold the {Capacity(capacity).label} capacity.")
    grant, created = UserCapacity.objects.get_or_create(
        user=user, capacity=capacity, defaults={"granted_by": actor, "granted_at": clock.now()}
    )
    if created:
        user.forget_rights()
        audit_record(actor=actor, action="user.capacity_grant", target=user, after={"capacity": capacity})
    return grant


@transaction.atomic
def user_capacity_revoke(*, actor: User | None, user: User, capacity: str) -> None:
    if actor is not None and actor.pk == user.pk:
        raise AccessError("Nobody revokes their own capacity: ask another policy administrator.")
    user = _locked_user(user)
    deleted, _ = UserCapacity.objects.filter(user=user, capacity=capacity).delete()
    if deleted:
        user.forget_rights()
        audit_record(actor=actor, action="user.capacity_revoke", target=user, before={"capacity": capacity})


@transaction.atomic
def break_glass_open(*, actor: User, reason: str) -> BreakGlassSession:
    """Opens an administrator's emergency session; Slack and e-mail announce it at once."""
    reason = reason.strip()
    if actor.role != Role.ADMIN:
        raise AccessError("Only administrators open break-glass sessions.")
    if len(reason) < 10:
        raise AccessError("Say why you need emergency access (at least 10 characters).")
    _locked_user(actor)
    if BreakGlassSession.objects.active().filter(user=actor).exists():
        raise AccessError("You already have an open break-glass session.")
    policy = AccessPolicy.current()
    now = clock.now()
    session = BreakGlassSession.objects.create(
        user=actor,
        reason=reason,
        opened_at=now,
        expires_at=now + timedelta(minutes=policy.break_glass_minutes),
    )
    actor.forget_rights()
    audit_record(
        actor=actor,
        action="break_glass.open",
        target=session,
        after={"reason": reason, "expires_at": session.expires_at},
    )
    subject = f"Break-glass: {actor.display_name} has full rights until {session.expires_at:%H:%M} UTC"
    body = f"Reason: {reason}\nEvery act in this session is marked in the audit trail."
    notification_send(channel="slack", recipient=policy.announce_slack_channel, subject=subject, body=body)
    if policy.announce_email:
        notification_send(channel="email", recipient=policy.announce_email, subject=subject, body=body)
    return session


@transaction.atomic
def break_glass_close(*, actor: User, session: BreakGlassSession) -> BreakGlassSession:
    session = BreakGlassSession.objects.select_for_update().get(pk=session.pk)
    if not session.is_active():
        raise AccessError("This break-glass session has already ended.")
    if actor.pk != session.user_id and actor.role != Role.ADMIN:
        raise AccessError("Only the administrator who opened it, or another administrator, ends it.")
    closed_at = clock.now()
    # Audited first, while the session is still open, so the event carries the session's mark.
    audit_record(actor=actor, action="break_glass.close", target=session, after={"closed_at": closed_at})
    session.closed_at = closed_at
    session.closed_by = actor
    session.save(update_fields=["closed_at", "closed_by"])
    session.user.forget_rights()
    actor.forget_rights()
    return session


@transaction.atomic
def api_token_create(
    *, actor: User, name: str, expires_in_days: int, scope: str = ApiToken.Scope.FULL
) -> tuple[ApiToken, str]:
    """A token for CI. The secret is returned once and only its digest is stored. A token of the
    ci scope reports staging runs and nothing else; only those who may report them make one."""
    policy = AccessPolicy.current()
    if not 1 <= expires_in_days <= policy.api_token_max_days:
        raise AccessError(f"A token lasts from 1 to {policy.api_token_max_days} days.")
    if scope not in ApiToken.Scope.values:
        raise AccessError(f"scope: one of {', '.join(ApiToken.Scope.values)}.")
    if scope == ApiToken.Scope.CI and not has_right(actor, Right.STAGING_REPORT):
        raise PermissionDenied(
            f"A ci token reports staging runs. {missing_right_message(Right.STAGING_REPORT)}"
        )
    token, secret = ApiToken.objects.create(user=actor, expiry=None, name=name.strip()[:100], scope=scope)
    token.expiry = clock.now() + timedelta(days=expires_in_days)
    token.save(update_fields=["expiry"])
    audit_record(
        actor=actor,
        action="api_token.create",
        object_type="portal.apitoken",
        object_id=token.token_key,
        object_repr=str(token),
        after={"name": token.name, "expiry": token.expiry, "scope": token.scope},
    )
    return token, secret


@transaction.atomic
def api_token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.user_id != actor.pk:
        raise AccessError("Only the owner of a token revokes it.")
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="api_token.revoke",
            object_type="portal.apitoken",
            object_id=token.token_key,
            object_repr=str(token),
            after={"revoked_at": token.revoked_at},
        )
    return token


@transaction.atomic
def mfa_totp_confirm(*, actor: User, device: "TOTPDevice") -> list[str]:
    """Confirms the authenticator just checked with a code and issues fresh backup codes."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=actor)
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=actor, confirmed=False).delete()
    actor.forget_rights()
    audit_record(actor=actor, action="mfa.totp_confirm", target=actor, after={"device": device.name})
    return _backup_codes_issue(actor)


@transaction.atomic
def mfa_backup_codes_regenerate(*, actor: User) -> list[str]:
    codes = _backup_codes_issue(actor)
    audit_record(actor=actor, action="mfa.backup_codes_regenerate", target=actor)
    return codes


def _backup_codes_issue(user: User) -> list[str]:
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

    from portal.mfa import BACKUP_CODE_COUNT

    device, _ = StaticDevice.objects.get_or_create(
        user=user, name="Backup codes", defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@transaction.atomic
def user_unlock(*, actor: User, user: User) -> int:
    """Lifts a login lockout before its cool-off ends; policy administrators only."""
    from axes.models import AccessAttempt

    deleted: int
    deleted, _ = AccessAttempt.objects.filter(username=user.get_username()).delete()
    audit_record(actor=actor, action="user.unlock", target=user, after={"attempts_cleared": deleted})
    return deleted
