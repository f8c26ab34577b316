def access(request):
    """The break-glass session of the viewer, for the banner every page shows while one is open."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"break_glass_session": user.break_glass_session()}
