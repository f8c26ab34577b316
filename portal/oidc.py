"""Single sign-on through OpenID Connect (mozilla-django-oidc), when OIDC_* variables are set.

The identity provider's groups decide the role (OIDC_ROLE_GROUPS maps roles to group names); a
person in none of the mapped groups is refused. A sign-in whose ID token says the provider checked
a second factor (`amr` holds mfa, otp, hwk...) skips Greenlight's own code at sign-in; sensitive
acts still take a fresh code from a Greenlight authenticator.

A person is known by the provider's subject (`sub` of the ID token), stored on the user: an
e-mail address changes hands and some providers let people type their own. The first sign-in may
link an existing account with the same address only when the provider says it verified that
address (`email_verified`); after that the address plays no part.
"""

import logging

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from portal import services
from portal.roles import Role

logger = logging.getLogger(__name__)

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
        username = self.get_username(claims)
        if self.UserModel.objects.filter(username=username).exists():
            raise SuspiciousOperation(f"the username {username!r} belongs to another account")
        with transaction.atomic():
            return services.user_create(
                actor=None,
                username=username,
                password=None,
                role=role_from_claims(claims),
                email=claims["email"],
                first_name=claims.get("given_name", "")[:150],
                last_name=claims.get("family_name", "")[:150],
                oidc_subject=claims["sub"],
                reason="single sign-on",
            )

    def get_username(self, claims):
        return (claims.get("preferred_username") or claims["email"].split("@")[0])[:150]

    def update_user(self, user, claims):
        role = role_from_claims(claims)
        if role != user.role:
            user = services.user_role_set(actor=None, user=user, role=role)
        return user

    def filter_users_by_claims(self, claims):
        """Accounts not yet linked to any subject, with the same address: candidates to link."""
        return self.UserModel.objects.filter(email__iexact=claims["email"], oidc_subject__isnull=True)

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        subject = payload.get("sub")
        if not subject or claims.get("sub", subject) != subject:
            raise SuspiciousOperation("the user info's subject is not the ID token's")
        claims = {**claims, "sub": subject}
        if not self.verify_claims(claims):
            raise SuspiciousOperation("Claims verification failed")
        user = self.UserModel.objects.filter(oidc_subject=subject).first()
        if user is None:
            candidates = list(self.filter_users_by_claims(claims)[:2])
            if len(candidates) > 1:
                raise SuspiciousOperation("several accounts have this e-mail address")
            if candidates and claims.get("email_verified") is not True:
                logger.warning(
                    "single sign-on refused: %s would link to an existing account by an address the "
                    "provider has not verified",
                    subject,
                )
                raise SuspiciousOperation("the provider has not verified this e-mail address")
            if candidates:
                user = services.user_sso_link(user=candidates[0], subject=subject)
            else:
                user = self.create_user(claims)
        user = self.update_user(user, claims)
        methods = set(payload.get("amr") or [])
        self.request.session[IDP_MFA_SESSION_KEY] = bool(methods & MFA_METHODS)
        services.sign_in_record(
            user=user, step="sso", device="identity provider" if methods & MFA_METHODS else ""
        )
        return user


def passed_second_factor(request) -> bool:
    """Greenlight's own code at sign-in, or the identity provider's word that it checked one."""
    request = getattr(request, "_request", request)
    user = request.user
    if getattr(user, "is_verified", None) and user.is_verified():
        return True
    return bool(getattr(request, "session", {}).get(IDP_MFA_SESSION_KEY))
