"""Lockout: guessing is slowed where it happens, and never locks out the person guessed at.

Two counters, both judged on the portal clock (portal.clock, which tests and the demo shift):

- The sign-in path (a password at /login/, or the code typed right after it) is django-axes'.
  A failure counts against the pair of the account and the client address, so the guesser's
  address is locked out of that account while the account's owner elsewhere, and the guesser's
  neighbours signing in as themselves, are not. Two wider budgets bound what the pair alone would
  let through, as OWASP ASVS 2.2.1 asks (anti-automation effective against brute force *and* against
  lockout attacks, and no more than 100 failed attempts an hour on one account): an account takes
  at most ACCOUNT_BUDGET failed attempts per cool-off from all addresses together (25 per 15
  minutes: at most 100 an hour), and an address at most ADDRESS_BUDGET across all accounts (a
  credential-stuffing run from one place), wide enough that one person's typos behind an office
  NAT or a VPN lock nobody else out.
- A signed-in person's codes (an act's code, through a session that passed the second factor or
  through a token) count in `CodeFailures`, for that person alone and not by address: a stranger
  guessing passwords never blocks the verified session's code checks (an SRE's rollback during an
  incident), and the verified session's typos never block anyone's sign-in.
"""

from datetime import datetime, timedelta

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Q, Sum
from django.utils import timezone

from portal import clock

# Multiples of the failure limit (LOGIN_FAILURE_LIMIT, 5 by default) per cool-off.
ACCOUNT_BUDGET = 5
ADDRESS_BUDGET = 10


def cool_off() -> timedelta:
    return settings.AXES_COOLOFF_TIME


def failure_limit() -> int:
    return int(settings.AXES_FAILURE_LIMIT)


class PortalClockAxesHandler(AxesDatabaseHandler):
    """django-axes' database handler, counting by the pair and the two budgets, on the portal clock.

    axes stamps a new attempt with the real time (`auto_now_add`) and a repeated one with the
    request's stamp (`LockoutClockMiddleware`: the portal clock); here every attempt carries the
    portal clock's time, the one the cool-off is measured on. Every counted failure is audited.
    """

    def get_failures(self, request, credentials=None) -> int:
        counts = _counts(request, get_client_username(request, credentials))
        limit = get_failure_limit(request, credentials)
        if counts["account"] >= limit * ACCOUNT_BUDGET or counts["address"] >= limit * ADDRESS_BUDGET:
            return max(counts["pair"], limit)
        return counts["pair"]

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        from portal.services import sign_in_failure_record

        if request is None:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        locked_before = bool(getattr(request, "axes_locked_out", False))
        super().user_login_failed(sender, credentials, request, **kwargs)
        if locked_before:
            # Refused while locked: not counted (the cool-off runs from the last counted failure).
            return None
        username = get_client_username(request, credentials)
        AccessAttempt.objects.filter(
            username=username, ip_address=request.axes_ip_address, user_agent=request.axes_user_agent
        ).update(attempt_time=request.axes_attempt_time)
        if not request.axes_locked_out and self.is_locked(request, credentials):
            # The attempt axes just made counts once it carries the portal clock's time.
            request.axes_locked_out = True
            request.axes_credentials = credentials
        sign_in_failure_record(
            username=username or "",
            step=kwargs.get("step", "password"),
            locked=bool(request.axes_locked_out),
        )
        return None


def _counts(request, username: str | None) -> dict:
    """Failures and the latest of them in the cool-off: the pair, the account, the address."""
    ip = request.axes_ip_address
    pair, account, address = Q(username=username, ip_address=ip), Q(username=username), Q(ip_address=ip)
    counts = (
        AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request))
        .filter(account | address)
        .aggregate(
            pair=Sum("failures_since_start", filter=pair),
            account=Sum("failures_since_start", filter=account),
            address=Sum("failures_since_start", filter=address),
            pair_last=Max("attempt_time", filter=pair),
            account_last=Max("attempt_time", filter=account),
            address_last=Max("attempt_time", filter=address),
        )
    )
    for name in ("pair", "account", "address"):
        counts[name] = counts[name] or 0
    return counts


def sign_in_retry_at(request, username: str | None) -> datetime | None:
    """When the sign-in path opens again for this account from this address: the latest failure
    of each budget that is spent, plus the cool-off. None without a cool-off (an unlock is needed)."""
    from axes.handlers.proxy import AxesProxyHandler

    AxesProxyHandler.update_request(request)
    period = get_cool_off(request)
    if not period:
        return None
    counts = _counts(request, username)
    limit = failure_limit()
    spent = [
        counts[f"{name}_last"]
        for name, budget in (
            ("pair", limit),
            ("account", limit * ACCOUNT_BUDGET),
            ("address", limit * ADDRESS_BUDGET),
        )
        if counts[name] >= budget and counts[f"{name}_last"] is not None
    ]
    return max(spent) + period if spent else clock.now() + period


def lockout_message(retry_at: datetime | None) -> str:
    """Says when the person may try again."""
    if retry_at is None:
        return "Too many failed attempts. Ask a policy administrator to unlock your account."
    minutes = max(1, round((retry_at - clock.now()).total_seconds() / 60))
    return (
        f"Too many failed attempts. Try again after {timezone.localtime(retry_at):%H:%M %Z} "
        f"(in about {minutes} minute{'s' if minutes != 1 else ''})."
    )


def retry_after_seconds(retry_at: datetime | None) -> int:
    """The Retry-After header's value: whole seconds until the lockout ends (at least one)."""
    if retry_at is None:
        return int(cool_off().total_seconds())
    return max(1, int((retry_at - clock.now()).total_seconds() + 0.999))


def codes_retry_at(user) -> datetime | None:
    """When a signed-in person whose codes were refused too often may enter one again; None when
    they are not locked."""
    from portal.models import CodeFailures

    row = CodeFailures.objects.filter(user_id=user.pk).first()
    if row is None or row.failures < failure_limit():
        return None
    retry_at = row.last_failure_at + cool_off()
    return retry_at if retry_at > clock.now() else None
