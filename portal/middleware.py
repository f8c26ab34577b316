"""Request middleware: who is calling and from where, and in which time zone they read."""

import ipaddress
import zoneinfo

from django.conf import settings
from django.utils import timezone

from portal import context


def client_ip(meta: dict) -> str | None:
    """The client's address: REMOTE_ADDR, or X-Forwarded-For when REMOTE_ADDR is a trusted proxy.

    Walks X-Forwarded-For from the right, skipping trusted proxies, so a client cannot choose its
    address by sending the header itself.
    """
    remote = meta.get("REMOTE_ADDR") or None
    if remote is None or not _trusted(remote):
        return remote
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop):
            return hop if _is_ip(hop) else remote
    return hops[0] if hops and _is_ip(hops[0]) else remote


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.TRUSTED_PROXIES)


class RequestContextMiddleware:
    """Gives each request an id (kept from X-Request-ID when well-formed) and its real client IP.

    Forwarding headers are believed only from TRUSTED_PROXIES; from anyone else they are removed
    before Django's security middleware reads X-Forwarded-Proto.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        ip = client_ip(meta)
        if not (meta.get("REMOTE_ADDR") and _trusted(meta["REMOTE_ADDR"])):
            for header in (
                "HTTP_X_FORWARDED_FOR",
                "HTTP_X_FORWARDED_PROTO",
                "HTTP_X_FORWARDED_HOST",
            ):
                meta.pop(header, None)
        request.request_id = context.new_request_id(meta.get("HTTP_X_REQUEST_ID"))
        request.client_ip = ip
        bound = context.RequestContext(
            request_id=request.request_id,
            ip=ip,
            user_agent=meta.get("HTTP_USER_AGENT", "")[:500],
        )
        with context.bound(bound):
            response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


class ViewerTimezoneMiddleware:
    """Shows times in the signed-in viewer's own zone; they are stored in UTC."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = getattr(getattr(request, "user", None), "time_zone", None)
        if zone:
            try:
                timezone.activate(zoneinfo.ZoneInfo(zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class SecondFactorMiddleware:
    """Holds a signed-in person at the second-factor step until they pass it.

    Someone with a confirmed device enters a code after the password; someone whose role needs a
    second factor (approve, deploy, administer) and has none enrols first. The API answers for
    itself (its permissions refuse unverified sessions for sensitive actions).
    """

    EXEMPT_PREFIXES = ("/login/", "/logout/", "/account/mfa/", "/static/", "/api/", "/healthz", "/readyz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.shortcuts import redirect

        from portal import mfa, roles
        from portal.views.account import second_factor_url

        user = request.user
        if (
            user.is_authenticated
            and not request.path.startswith(self.EXEMPT_PREFIXES)
            and not user.is_verified()
        ):
            if mfa.has_device(user):
                return redirect(second_factor_url(request.get_full_path()))
            if roles.requires_mfa(user):
                return redirect("/account/mfa/")
        return self.get_response(request)


def axes_client_ip(request) -> str | None:
    """django-axes counts failures per client address: the one RequestContextMiddleware found."""
    return getattr(request, "client_ip", None) or client_ip(request.META)
