"""Who may do what: people and their roles and capacities, break-glass sessions, API tokens, the
second factor and its backup codes, unlocking a locked-out person."""

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from portal import clock
from portal.errors import Refusal
from portal.models import (
    AccessPolicy,
    ApiToken,
    BreakGlassSession,
    User,
    UserCapacity,
)
from portal.roles import CAPACITIES_FORBIDDEN_FOR, Capacity, Right, Role, has_right, missing_right_message
from portal.services.audit import audit_record
from portal.services.notifications import notification_send

if TYPE_CHECKING:
    from django_otp.plugins.otp_totp.models import TOTPDevice

logger = logging.getLogger(__name__)


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
def user_sso_link(*, user: User, subject: str) -> User:
    """Links an existing account to the identity provider's subject on its first sign-on (the
    provider verified the account's address). Greenlight itself acts: nobody is signed in yet."""
    user = _locked_user(user)
    if user.oidc_subject is not None:
        raise AccessError("This account is already linked to another single sign-on identity.")
    user.oidc_subject = subject
    user.save(update_fields=["oidc_subject"])
    audit_record(actor=None, action="user.sso_link", target=user, after={"subject": subject})
    return user


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
    *,
    actor: User,
    name: str,
    expires_in_days: int,
    scope: str = ApiToken.Scope.WRITE,
    confirmed_by: str = "",
) -> tuple[ApiToken, str]:
    """A token for CI. The secret is returned once and only its digest is stored. A read token
    makes only safe (reading) calls; a write token does what its owner may; a token of the ci
    scope reports staging runs and nothing else, and only those who may report them make one.
    The page and the API take a fresh code first; `confirmed_by` names the factor, for the record."""
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
        after={
            "name": token.name,
            "expiry": token.expiry,
            "scope": token.scope,
            **({"confirmed_by": confirmed_by} if confirmed_by else {}),
        },
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
    from portal.models import SealedTOTPDevice

    device = SealedTOTPDevice.objects.select_for_update().get(pk=device.pk, user=actor)
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    SealedTOTPDevice.objects.filter(user=actor, confirmed=False).delete()
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

    from portal import otp_keys
    from portal.mfa import BACKUP_CODE_COUNT

    device, _ = StaticDevice.objects.get_or_create(
        user=user, name="Backup codes", defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    # Shown once; kept only as keyed digests (portal.otp_keys), checked by backup_code_spend.
    StaticToken.objects.bulk_create(
        [StaticToken(device=device, token=otp_keys.backup_digest(device.pk, code)) for code in codes]
    )
    return codes


@transaction.atomic
def user_unlock(*, actor: User, user: User) -> int:
    """Lifts a lockout before its cool-off ends, of sign-in and of the person's codes alike;
    policy administrators only."""
    from axes.models import AccessAttempt

    from portal.models import CodeFailures

    deleted: int
    deleted, _ = AccessAttempt.objects.filter(username=user.get_username()).delete()
    CodeFailures.objects.filter(user=user).delete()
    audit_record(actor=actor, action="user.unlock", target=user, after={"attempts_cleared": deleted})
    return deleted
