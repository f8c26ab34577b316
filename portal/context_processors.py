from django.conf import settings


def access(request):
    """The break-glass session of the viewer (for the banner every page shows while one is open),
    the background processes not seen for a minute (another banner), and whether single sign-on is
    on (for the sign-in page)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"sso_enabled": settings.OIDC_ENABLED}
    from portal import heartbeat, mfa, roles
    from portal.oidc import passed_second_factor

    pending = not passed_second_factor(request) and (roles.requires_mfa(user) or mfa.has_device(user))
    return {
        "sso_enabled": settings.OIDC_ENABLED,
        "break_glass_session": user.break_glass_session(),
        # Signed in with a password, the code still to come: no navigation yet.
        "second_factor_pending": pending,
        # A worker or beat not seen for a minute: named on every page, with what waits for it.
        "process_warnings": [] if pending else heartbeat.warnings(),
    }
