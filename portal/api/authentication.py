"""API tokens for CI (django-rest-knox), with revocation, the portal clock and last use."""

from datetime import timedelta

from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from rest_framework import exceptions

from portal import clock, context

# Writing last use on every call would make each API call a write; once a minute is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiTokenAuthentication(TokenAuthentication):
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
            raise exceptions.AuthenticationFailed(
                _("Invalid, expired or revoked token. Create a new one at /account/tokens/.")
            ) from None
