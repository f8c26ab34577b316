"""API tokens for CI (django-rest-knox), with revocation, the portal clock and last use."""

from datetime import timedelta

from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS

from portal import clock, context, mfa
from portal.oidc import passed_second_factor
from portal.roles import requires_mfa

# Writing last use on every call would make each API call a write; once a minute is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)


# What a token of the ci scope may call: reporting staging runs, and reading them.
CI_SCOPE_VIEWS = frozenset({"api-staging-runs"})


class ApiTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None and result[1].scope == result[1].Scope.CI:
            match = getattr(request._request, "resolver_match", None)
            if match is None or match.url_name not in CI_SCOPE_VIEWS:
                raise exceptions.PermissionDenied(
                    "This token has the ci scope: it only reports staging runs (/api/v1/staging-runs/)."
                )
        if (
            result is not None
            and result[1].scope == result[1].Scope.READ
            and request.method not in SAFE_METHODS
        ):
            raise exceptions.PermissionDenied(
                "This token has the read scope: it only reads (GET). Make a write token at "
                "/account/tokens/ for this."
            )
        return result

    def _cleanup_token(self, auth_token) -> bool:
        # Expired and revoked tokens are kept for the record (the owner sees them listed as
        # such); they simply do not authenticate.
        return not auth_token.is_usable()

    def validate_user(self, auth_token):
        user, token = super().validate_user(auth_token)
        now = clock.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            request = context.current()
            type(token).objects.filter(pk=token.pk).update(
                last_used_at=now, last_used_ip=request.ip if request else None
            )
        return user, token

    def authenticate_credentials(self, token):
        try:
            return super().authenticate_credentials(token)
        except exceptions.AuthenticationFailed:
            raise TokenRefused() from None


class TokenRefused(exceptions.AuthenticationFailed):
    """A token that does not (or no longer) authenticate: 401 with WWW-Authenticate: Token."""

    default_detail = _("Invalid, expired or revoked token. Create a new one at /account/tokens/.")
    default_code = "token_refused"


class VerifiedSessionAuthentication(SessionAuthentication):
    """The browser's session, once it has passed the second factor where one is needed.

    A password alone opens no API call for someone who has an authenticator or whose role needs
    one: they finish signing in at /login/otp/ first, as the pages make them.
    """

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        if not passed_second_factor(request) and (mfa.has_device(user) or requires_mfa(user)):
            raise exceptions.AuthenticationFailed(
                "Finish signing in with the code from your authenticator app at /login/otp/."
            )
        return result
