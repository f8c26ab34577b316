"""Second factor: TOTP devices and backup codes (django-otp), checked with the login throttle.

A code is checked against the user's confirmed devices; each failure counts toward the same
lockout as a wrong password (django-axes, per user and per client address), so guessing codes is
as slow as guessing passwords. django-otp itself refuses a TOTP code at or before the last one used.
"""

import io
from dataclasses import dataclass

import django_otp
import qrcode
import qrcode.image.svg
from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth.signals import user_login_failed
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import access_cache

BACKUP_CODE_COUNT = 10


class OTPLockedOut(Exception):
    """Too many failed attempts from this user or address."""


@dataclass(frozen=True)
class OTPVerdict:
    device: object | None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.device is not None


def has_device(user) -> bool:
    """Whether the user has a confirmed authenticator (read once per request's user object)."""
    return bool(user.pk) and access_cache.standing(user).has_device


def totp_device_pending(user) -> TOTPDevice:
    """The unconfirmed authenticator being enrolled, made on first visit of the enrolment page."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def qr_code_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG QR code (no image library, no external request)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


def check_code(request, user, code: str, *, devices=None) -> OTPVerdict:
    """Verifies a code for `user` and counts a failure toward the lockout.

    `devices` narrows the check (enrolment checks only the device being enrolled).
    """
    request = getattr(request, "_request", request)  # a DRF request wraps Django's
    credentials = {"username": user.get_username()}
    if AxesProxyHandler.is_locked(request, credentials):
        raise OTPLockedOut(lockout_message(request, user.get_username()))
    code = (code or "").strip().replace(" ", "")
    if devices is None:
        devices = list(TOTPDevice.objects.devices_for_user(user, confirmed=True)) + list(
            StaticDevice.objects.devices_for_user(user, confirmed=True)
        )
    for device in devices:
        if code and django_otp.verify_token(user, device.persistent_id, code):
            return OTPVerdict(device=device)
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    if AxesProxyHandler.is_locked(request, credentials):
        raise OTPLockedOut(lockout_message(request, user.get_username()))
    if not code:
        return OTPVerdict(None, "Enter the 6-digit code from your authenticator app.")
    return OTPVerdict(None, "That code is not valid or was already used. Enter the current code.")


def device_words(device) -> str:
    """The second factor that confirmed an act, as the record keeps it."""
    if isinstance(device, StaticDevice):
        return "a backup code"
    if device is None:
        return ""
    return f"authenticator app “{device.name}” (TOTP)"[:120]


def check_form_code(request, form, *, devices=None) -> OTPVerdict:
    """Checks the signed-in person's code from a valid form's `otp` field; a refusal is put on
    that field for the page to show."""
    verdict = check_code(request, request.user, form.cleaned_data["otp"], devices=devices)
    if not verdict.ok:
        form.add_error("otp", verdict.message)
    return verdict


def done_with_code(request, form, act) -> bool:
    """Runs `act` once the form is valid and carries the signed-in person's current code: True when
    it is done; otherwise the refusal (of the code or of the service) is on the form for the page to
    show. A missing right is raised as PermissionDenied for the caller to answer with a 403."""
    from django.core.exceptions import ValidationError

    if not (form.is_valid() and check_form_code(request, form).ok):
        return False
    try:
        act()
    except ValidationError as refused:
        form.add_error(None, " ".join(refused.messages))
        return False
    return True


def lockout_message(request, username: str | None) -> str:
    """Says when the person may try again: the last failure plus the cool-off."""
    from axes.helpers import get_cool_off
    from axes.models import AccessAttempt
    from django.db.models import Max, Q
    from django.utils import timezone

    from portal import clock

    cool_off = get_cool_off(request)
    ip = getattr(request, "client_ip", None)
    match = Q(username=username) if username else Q(pk__in=[])
    if ip:
        match |= Q(ip_address=ip)
    last = AccessAttempt.objects.filter(match).aggregate(last=Max("attempt_time"))["last"]
    if not cool_off or last is None:
        return "Too many failed attempts. Ask a policy administrator to unlock your account."
    retry_at = timezone.localtime(last + cool_off)
    minutes = max(1, round((last + cool_off - clock.now()).total_seconds() / 60))
    return (
        f"Too many failed attempts. Try again after {retry_at:%H:%M %Z} "
        f"(in about {minutes} minute{'s' if minutes != 1 else ''})."
    )


def totp_code(device: TOTPDevice) -> str:
    """The code an authenticator app shows for this device now, or for the next time step when
    the current one was already used (django-otp accepts one step of drift, refuses reuse).
    For the demo's `demo_otp` and the tests: nothing waits for the next step."""
    import time

    from django_otp.oath import TOTP

    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    step = max(totp.t(), device.last_t + 1)
    # The code of an absolute time step: no drift, which verification applies on its own side.
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = device.t0 + step * device.step
    return f"{totp.token():0{device.digits}d}"


def lockout_parameters(request_or_attempt, credentials=None) -> list:
    """What failures are counted by: the account and the client address when someone signs in;
    the account alone for a code checked by someone already signed in, so that one person's typos
    behind a shared address (an office, a VPN) never lock out their colleagues' approvals."""
    user = getattr(request_or_attempt, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return ["username"]
    return ["username", "ip_address"]


def failures_clear(user) -> None:
    """Sign-in completed (password and code): the account's failed attempts are forgiven."""
    from axes.utils import reset

    reset(username=user.get_username())
