"""Request middleware: who is calling and from where, and in which time zone they read."""

import ipaddress
import zoneinfo

from django.conf import settings
from django.utils import timezone

from portal import context


def normalised_ip(value: str | None) -> str | None:
    """One spelling per address, the one PostgreSQL gives back: IPv4-mapped IPv6 unwrapped
    (::ffff:10.0.0.1 is 10.0.0.1), zone ids dropped. None for anything that is not an address."""
    if not value:
        return None
    try:
        ip = ipaddress.ip_address(value.strip().split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def client_ip(meta: dict) -> str | None:
    """The client's address: REMOTE_ADDR, or X-Forwarded-For when REMOTE_ADDR is a trusted proxy.

    Walks X-Forwarded-For from the right, skipping trusted proxies, so a client cannot choose its
    address by sending the header itself.
    """
    remote = normalised_ip(meta.get("REMOTE_ADDR"))
    if remote is None or not _trusted(remote):
        return remote
    hops = [normalised_ip(hop) for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop is None:
            return remote
        if not _trusted(hop):
            return hop
    return hops[0] if hops else remote


def _trusted(address: str | None) -> bool:
    address = normalised_ip(address)
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in settings.TRUSTED_PROXIES)


class RequestContextMiddleware:
    """Gives each request an id and its real client IP.

    Forwarding headers, X-Request-ID among them, are believed only from TRUSTED_PROXIES (a load
    balancer that stamps requests); from anyone else they are removed before Django's security
    middleware reads X-Forwarded-Proto, so nobody picks the id their acts are audited under.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        ip = client_ip(meta)
        if not _trusted(meta.get("REMOTE_ADDR")):
            for header in (
                "HTTP_X_FORWARDED_FOR",
                "HTTP_X_FORWARDED_PROTO",
                "HTTP_X_FORWARDED_HOST",
                "HTTP_X_REQUEST_ID",
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
        # The public status page speaks UTC to everyone, and never loads the person (it is served
        # from its cache while the database is down).
        public = request.path.startswith("/status/")
        zone = None if public else getattr(getattr(request, "user", None), "time_zone", None)
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

    # The public status page is everyone's, signed in or not.
    EXEMPT_PREFIXES = (
        "/login/",
        "/logout/",
        "/account/mfa/",
        "/static/",
        "/api/",
        "/healthz",
        "/readyz",
        "/status/",
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.shortcuts import redirect

        from portal import mfa, roles
        from portal.oidc import passed_second_factor
        from portal.views.account import second_factor_url

        user = request.user
        if (
            # The path first: an exempt page does not load the person (a database read).
            not request.path.startswith(self.EXEMPT_PREFIXES)
            and user.is_authenticated
            and not passed_second_factor(request)
        ):
            if mfa.has_device(user):
                return redirect(second_factor_url(request.get_full_path()))
            if roles.requires_mfa(user):
                return redirect("/account/mfa/")
        return self.get_response(request)


def axes_client_ip(request) -> str | None:
    """django-axes counts failures per client address: the one RequestContextMiddleware found."""
    return getattr(request, "client_ip", None) or client_ip(request.META)


class LockoutClockMiddleware:
    """Times sign-in failures with the portal clock, so the lockout's cool-off follows it.

    django-axes stamps each request once (`axes_attempt_time`) and measures the cool-off from that
    stamp; stamping it here first makes a shifted clock (tests, the demo) end a lockout as the
    real one would, with nobody waiting.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from axes.handlers.proxy import AxesProxyHandler

        from portal import clock

        AxesProxyHandler.update_request(request)
        request.axes_attempt_time = clock.now()
        return self.get_response(request)


class LockoutMiddleware:
    """Answers a code check refused for too many failures (`OTPLockedOut`, from any view) with the
    lockout page, or JSON under /api/, saying when to try again."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from portal.mfa import OTPLockedOut
        from portal.views.account import lockout_response

        if not isinstance(exception, OTPLockedOut):
            return None
        return lockout_response(request, exception.retry_at)
