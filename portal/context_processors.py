from django.conf import settings


def access(request):
    """The break-glass session of the viewer (for the banner every page shows while one is open),
    and whether single sign-on is on (for the sign-in page)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"sso_enabled": settings.OIDC_ENABLED}
    from portal import mfa, roles
    from portal.oidc import passed_second_factor

    pending = not passed_second_factor(request) and (roles.requires_mfa(user) or mfa.has_device(user))
    return {
        "sso_enabled": settings.OIDC_ENABLED,
        "break_glass_session": user.break_glass_session(),
        # Signed in with a password, the code still to come: no navigation yet.
        "second_factor_pending": pending,
    }
