"""Signing in and out, and the second factor's failures, as the audit trail keeps them.

A failed sign-in has no actor (nobody is proven yet): the event names the username tried, never
the password. A signed-in person's wrong codes are counted here, for that person alone
(portal.lockout says why), each in the transaction of its audit event.
"""

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction

from portal import clock, lockout
from portal.models import CodeFailures, User
from portal.services.audit import audit_record

if TYPE_CHECKING:
    from django_otp.plugins.otp_static.models import StaticDevice


def _user_named(username: str) -> User | None:
    return User.objects.filter(username=username).first() if username else None


@transaction.atomic
def sign_in_record(*, user: User, step: str, device: str = "") -> None:
    """A sign-in step passed: `password` (the second factor may follow), `second_factor` (with
    the device that confirmed it), or `sso`."""
    after = {"step": step}
    if device:
        after["device"] = device
    audit_record(actor=user, action="auth.sign_in", target=user, after=after)


@transaction.atomic
def sign_out_record(*, user: User) -> None:
    audit_record(actor=user, action="auth.sign_out", target=user)


@transaction.atomic
def sign_in_failure_record(*, username: str, step: str, locked: bool) -> None:
    """A failure counted on the sign-in path (`password`, or the `second_factor` typed right after
    it); `locked` when it reached a limit, which is audited too."""
    user = _user_named(username)
    after = {"username": username[:150], "step": step}
    # An unknown username is named in the event; no user row stands behind it.
    unknown = "" if user else username[:150]
    object_type = "" if user else "portal.user"
    audit_record(
        actor=None,
        action="auth.sign_in_failed",
        target=user,
        object_type=object_type,
        object_repr=unknown,
        after=after,
    )
    if locked:
        audit_record(
            actor=None,
            action="auth.locked_out",
            target=user,
            object_type=object_type,
            object_repr=unknown,
            after={**after, "path": "sign_in"},
        )


@transaction.atomic
def code_failure_record(*, user: User) -> datetime | None:
    """A signed-in person's wrong code (for an act): counted for them alone; returns when they may
    try again once this failure reached the limit, None while they may go on trying."""
    now = clock.now()
    row, _ = CodeFailures.objects.select_for_update().get_or_create(
        user=user, defaults={"failures": 0, "last_failure_at": now}
    )
    if row.last_failure_at + lockout.cool_off() <= now:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    row.save(update_fields=["failures", "last_failure_at"])
    audit_record(actor=user, action="auth.code_failed", target=user, after={"failures": row.failures})
    if row.failures < lockout.failure_limit():
        return None
    retry_at = now + lockout.cool_off()
    if row.failures == lockout.failure_limit():
        audit_record(
            actor=user,
            action="auth.locked_out",
            target=user,
            after={"path": "codes", "until": retry_at},
        )
    return retry_at


@transaction.atomic
def backup_code_spend(*, user: User, device: "StaticDevice", code: str) -> bool:
    """Spends one of the person's backup codes, kept as digests (portal.otp_keys): each works
    once. Audited with how many remain, so their owner knows when to make new ones."""
    from django_otp.plugins.otp_static.models import StaticToken

    from portal import otp_keys

    token = (
        StaticToken.objects.select_for_update()
        .filter(device__user=user, device_id=device.pk, token__in=otp_keys.backup_digests(device.pk, code))
        .first()
    )
    if token is None:
        return False
    token.delete()
    left = StaticToken.objects.filter(device__user=user).count()
    audit_record(actor=user, action="auth.backup_code_used", target=user, after={"codes_left": left})
    return True


@transaction.atomic
def password_set(*, user: User, password: str, how: str, confirmed_by: str = "") -> User:
    """A new password, chosen by its owner (`change`, with a code) or through a link e-mailed to
    them (`reset`). Every session signed in with the old one ends (Django checks the password's
    hash on each request) and so does the calendar feed's key, which is bound to it. A reset leaves
    the second factor as it was: signing in still takes the code."""
    user = User.objects.select_for_update().get(pk=user.pk)
    user.set_password(password)
    user.save(update_fields=["password"])
    after = {"how": how, **({"confirmed_by": confirmed_by} if confirmed_by else {})}
    audit_record(actor=user, action=f"auth.password_{how}", target=user, after=after)
    return user


@transaction.atomic
def password_reset_requested_record(*, user: User) -> None:
    """A reset link was e-mailed to the person (whoever asked: nobody is signed in)."""
    audit_record(actor=None, action="auth.password_reset_requested", target=user)
