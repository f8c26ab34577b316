"""Single sign-on through OpenID Connect (mozilla-django-oidc), when OIDC_* variables are set.

The identity provider's groups decide the role (OIDC_ROLE_GROUPS maps roles to group names); a
person in none of the mapped groups is refused. A sign-in whose ID token says the provider checked
a second factor (`amr` holds mfa, otp, hwk...) skips Greenlight's own code at sign-in; sensitive
acts still take a fresh code from a Greenlight authenticator.
"""

from django.conf import settings
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from portal import services
from portal.roles import Role

IDP_MFA_SESSION_KEY = "greenlight_idp_mfa"
# RFC 8176 authentication method references that mean a second factor was checked.
MFA_METHODS = {"mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "iris", "retina", "vbm"}


def role_from_claims(claims: dict) -> str | None:
    """The role of the first mapped group the person belongs to, in the order of Role."""
    groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    for role in Role.values:
        group = settings.OIDC_ROLE_GROUPS.get(role)
        if group and group in groups:
            return role
    return None


class GreenlightOIDCBackend(OIDCAuthenticationBackend):
    def verify_claims(self, claims):
        return bool(claims.get("email")) and role_from_claims(claims) is not None

    def create_user(self, claims):
        with transaction.atomic():
            return services.user_create(
                actor=None,
                username=self.get_username(claims),
                password=None,
                role=role_from_claims(claims),
                email=claims["email"],
                first_name=claims.get("given_name", "")[:150],
                last_name=claims.get("family_name", "")[:150],
                reason="single sign-on",
            )

    def get_username(self, claims):
        return (claims.get("preferred_username") or claims["email"].split("@")[0])[:150]

    def update_user(self, user, claims):
        role = role_from_claims(claims)
        if role != user.role:
            user = services.user_role_set(actor=None, user=user, role=role)
        return user

    def get_or_create_user(self, access_token, id_token, payload):
        user = super().get_or_create_user(access_token, id_token, payload)
        if user is not None:
            methods = set(payload.get("amr") or [])
            self.request.session[IDP_MFA_SESSION_KEY] = bool(methods & MFA_METHODS)
        return user


def passed_second_factor(request) -> bool:
    """Greenlight's own code at sign-in, or the identity provider's word that it checked one."""
    request = getattr(request, "_request", request)
    user = request.user
    if getattr(user, "is_verified", None) and user.is_verified():
        return True
    return bool(getattr(request, "session", {}).get(IDP_MFA_SESSION_KEY))
