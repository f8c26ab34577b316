"""Error pages: JSON under /api/, HTML elsewhere, each saying what went wrong."""

import functools
from collections.abc import Callable, Mapping

from django.shortcuts import render

from portal.api import errors
from portal.roles import has_right, missing_right_message


def forbidden(request, exception=None, reason: str | None = None):
    """A 403 that says what is missing, from the PermissionDenied message when there is one."""
    reason = reason or (str(exception) if exception and str(exception) else None)
    if request.path.startswith("/api/"):
        return errors.json_error(403, reason or "You do not have permission to do this.", "permission_denied")
    return render(request, "403.html", {"reason": reason}, status=403)


def right_needed(*rights: str, actions: Mapping[str, tuple[str, ...]] | None = None) -> Callable:
    """A page's view refuses (403) a signed-in person who holds none of `rights`, or for a view
    whose URL names an `action`, none of that action's, before it looks anything up: a refusal
    says the same whether or not the object exists."""

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(request, *args, **kwargs):
            needed = (actions or {}).get(kwargs.get("action", ""), rights)
            if needed and not any(has_right(request.user, right) for right in needed):
                return forbidden(request, reason=missing_right_message(*needed))
            return view(request, *args, **kwargs)

        return guarded

    return wrap


def csrf_failure(request, reason=""):
    return forbidden(
        request,
        reason="This form expired or came from another site. Reload the page and send it again.",
    )


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return errors.not_found(request, exception)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return errors.server_error(request)
    return render(request, "500.html", {"request_id": getattr(request, "request_id", "")}, status=500)
