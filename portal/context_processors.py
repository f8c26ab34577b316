from django.conf import settings


def access(request):
    """The break-glass session of the viewer (for the banner every page shows while one is open),
    and whether single sign-on is on (for the sign-in page)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"sso_enabled": settings.OIDC_ENABLED}
    return {"sso_enabled": settings.OIDC_ENABLED, "break_glass_session": user.break_glass_session()}
