"""Second factor: TOTP devices and backup codes (django-otp), checked with the lockout.

A code is checked against the user's confirmed devices. A failure on the way in (the code typed
after the password, or while enrolling) counts on the sign-in path, with wrong passwords; a
failure of someone already signed in (a session that passed the second factor, or a token) counts
for that person alone (portal.lockout says why). django-otp itself refuses a TOTP code at or
before the last one used.
"""

import io
from dataclasses import dataclass

import qrcode
import qrcode.image.svg
from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import access_cache, lockout
from portal.models import SealedTOTPDevice

BACKUP_CODE_COUNT = 10


class OTPLockedOut(Exception):
    """Too many failed attempts: the message says when to try again, `retry_at` is that time
    (None: only an unlock lifts it)."""

    def __init__(self, retry_at):
        self.retry_at = retry_at
        super().__init__(lockout.lockout_message(retry_at))


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


def totp_device_pending(user) -> SealedTOTPDevice:
    """The unconfirmed authenticator being enrolled, made on first visit of the enrolment page."""
    device = SealedTOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None:
        device = SealedTOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def qr_code_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG QR code (no image library, no external request)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


def signed_in_check(request) -> bool:
    """Whether a code is checked for someone already signed in (a session that passed the second
    factor, or a token), rather than on the way in."""
    from portal.models import ApiToken
    from portal.oidc import passed_second_factor

    return isinstance(getattr(request, "auth", None), ApiToken) or passed_second_factor(request)


def check_code(request, user, code: str, *, devices=None) -> OTPVerdict:
    """Verifies a code for `user` and counts a failure toward the lockout of its path.

    `devices` narrows the check (enrolment checks only the device being enrolled).
    """
    from portal import services

    request = getattr(request, "_request", request)  # a DRF request wraps Django's
    signed_in = signed_in_check(request)
    credentials = {"username": user.get_username()}
    if signed_in:
        retry_at = lockout.codes_retry_at(user)
        if retry_at is not None:
            raise OTPLockedOut(retry_at)
    elif AxesProxyHandler.is_locked(request, credentials):
        raise OTPLockedOut(lockout.sign_in_retry_at(request, user.get_username()))
    code = (code or "").strip().replace(" ", "")
    if devices is None:
        devices = list(SealedTOTPDevice.objects.devices_for_user(user, confirmed=True)) + list(
            StaticDevice.objects.devices_for_user(user, confirmed=True)
        )
    for device in devices if code else []:
        if device.user_id != user.pk:
            continue
        if isinstance(device, StaticDevice):
            # Backup codes are kept as digests: spent here, never by django-otp's own comparison.
            if services.backup_code_spend(user=user, device=device, code=code):
                return OTPVerdict(device=device)
        else:
            with transaction.atomic():
                # Locked while checked, so a code raced twice passes once (django-otp keeps the
                # last time step used and refuses any at or before it).
                totp = SealedTOTPDevice.objects.select_for_update().get(pk=device.pk)
                if totp.verify_token(code):
                    return OTPVerdict(device=totp)
    if signed_in:
        retry_at = services.code_failure_record(user=user)
        if retry_at is not None:
            raise OTPLockedOut(retry_at)
    else:
        user_login_failed.send(
            sender=__name__, credentials=credentials, request=request, step="second_factor"
        )
        if AxesProxyHandler.is_locked(request, credentials):
            raise OTPLockedOut(lockout.sign_in_retry_at(request, user.get_username()))
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


def totp_code(device: TOTPDevice) -> str:
    """The code an authenticator app shows for this device now, or for the next time step when
    the current one was already used (django-otp accepts one step of drift, refuses reuse).
    For the demo's `demo_otp` and the tests: nothing waits for the next step."""
    import time

    from django_otp.oath import TOTP

    device = SealedTOTPDevice.objects.get(pk=device.pk)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    step = max(totp.t(), device.last_t + 1)
    # The code of an absolute time step: no drift, which verification applies on its own side.
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = device.t0 + step * device.step
    return f"{totp.token():0{device.digits}d}"


def failures_clear(request, user) -> None:
    """Sign-in completed (password and code): the failed attempts from this address at this
    account are forgiven; a stranger's elsewhere still count toward the account's budget."""
    from axes.utils import reset

    reset(ip=getattr(request, "axes_ip_address", None), username=user.get_username())
