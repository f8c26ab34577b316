"""Who may call what: a right from the role matrix, and a fresh second factor for sensitive acts."""

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from portal import lockout, mfa
from portal.models import ApiToken
from portal.oidc import passed_second_factor
from portal.roles import has_right, missing_right_message


def right_required(right: str):
    """A DRF permission class that asks for one right and names it when it is missing."""

    class HasRight(BasePermission):
        message = missing_right_message(right)

        def has_permission(self, request, view):
            return has_right(request.user, right)

    HasRight.__name__ = f"HasRight_{right.replace('.', '_')}"
    return HasRight


def any_right_required(*rights: str):
    class HasAnyRight(BasePermission):
        message = missing_right_message(*rights)

        def has_permission(self, request, view):
            return any(has_right(request.user, right) for right in rights)

    return HasAnyRight


def read_write_rights(*, read: str, write: str):
    """Reading (GET, HEAD, OPTIONS) asks for `read`, every other method for `write`; the refusal
    names the one asked for."""

    class HasReadWriteRight(BasePermission):
        def has_permission(self, request, view):
            right = read if request.method in SAFE_METHODS else write
            self.message = missing_right_message(right)
            return has_right(request.user, right)

    return HasReadWriteRight


class CiToken(BasePermission):
    """Reports that gates trust (staging runs) come from CI: an API token of the ci scope, never a
    person's browser session or full token, so nobody reports on their own change by hand."""

    message = (
        "Staging runs come from CI: an API token of the ci scope (made at /account/tokens/ by those "
        "who may report them), or GitHub's signed deployment_status event."
    )

    def has_permission(self, request, view):
        return isinstance(request.auth, ApiToken) and request.auth.scope == ApiToken.Scope.CI


class NoToken(BasePermission):
    """An act only a signed-in person does in the portal, never through a token (making tokens)."""

    message = "A token cannot make tokens: sign in to the portal to create one."

    def has_permission(self, request, view):
        return not isinstance(request.auth, ApiToken)


class FreshOTP(BasePermission):
    """A sensitive act takes a current code in `otp`; a token alone never suffices.

    A browser session must also have passed the second factor at sign-in. Wrong codes count
    for the caller alone (portal.lockout); too many answer 429 with Retry-After.
    """

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        if not user.is_authenticated:
            return False
        token_call = isinstance(request.auth, ApiToken)
        if not mfa.has_device(user):
            raise exceptions.PermissionDenied(
                "This action needs a second factor: set up an authenticator app at /account/mfa/ first."
            )
        if not token_call and not passed_second_factor(request):
            raise exceptions.PermissionDenied(
                "Your session has not passed the second factor: sign in again with your code."
            )
        code = request.data.get("otp") if hasattr(request.data, "get") else None
        if not code:
            raise exceptions.PermissionDenied(
                "This action needs a current code from your authenticator app in the `otp` field."
            )
        try:
            verdict = mfa.check_code(request, user, str(code))
        except mfa.OTPLockedOut as locked:
            throttled = exceptions.Throttled(detail=str(locked))
            throttled.wait = lockout.retry_after_seconds(locked.retry_at)  # sent as Retry-After
            raise throttled from None
        if not verdict.ok:
            raise exceptions.PermissionDenied(verdict.message)
        request.otp_device = verdict.device
        return True
