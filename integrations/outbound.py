"""Requests to addresses people type into the settings (a colour's own address and its smoke
checks, the webhook deployer). Such an address is never trusted to stay on the outside: its host
is resolved, and every address it resolves to must be a public one, or be listed in
OUTBOUND_ALLOWED_HOSTS (a host name, `.example.com` for its subdomains, or an address or network
in CIDR form). Loopback, link-local, private, shared, multicast and unspecified addresses are
refused unless listed, and the cloud's metadata service (169.254.169.254, fd00:ec2::254) unless
that very address is listed. The request goes to the address that was checked (a name is not
resolved twice, so an answer that changes in between cannot move it), redirects are not
followed, and what comes back is its status and timing; a body is read only as far as the caller
asks, to compare, never to keep."""

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError

from portal.errors import OutsideError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# socket.getaddrinfo's shape: (family, type, proto, canonname, (address, port, ...)) for each address.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_HOST_NAME = re.compile(r"\.?(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


class OutboundRefused(OutsideError):
    """The address may not be reached from here (or cannot be: its name does not resolve),
    found before any connection is made."""


@dataclass(frozen=True)
class Target:
    """Where a request goes: the URL's parts, and the one address it connects to."""

    scheme: str
    host: str
    port: int
    path: str
    address: str

    @property
    def netloc(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Answer:
    status: int
    elapsed_ms: int
    body: bytes  # no more than the caller asked to read

    @property
    def redirect(self) -> bool:
        return 300 <= self.status < 400


def target(
    url: str, *, allowed: Iterable[str] | None = None, resolve: Resolver = socket.getaddrinfo
) -> Target:
    """The address `url` would be reached at, checked; an OutboundRefused in words naming the host
    and why, before anything is sent. `resolve` is getaddrinfo's shape (a test gives its own)."""
    allowed = list(settings.OUTBOUND_ALLOWED_HOSTS if allowed is None else allowed)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundRefused(f"{url!r} is not an address: give http(s)://host/path.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(f"{url!r} is not an address: give http(s)://host/path.")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused(f"{url!r} carries a user name or password: give the address without them.")
    host = parts.hostname.lower()
    port = port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    addresses = _addresses(host, port, resolve)
    for address in addresses:
        why = refusal(host, address, allowed)
        if why:
            raise OutboundRefused(
                f"{host} may not be reached from Greenlight: {why}. An installation that should reach "
                "it lists it in OUTBOUND_ALLOWED_HOSTS."
            )
    return Target(parts.scheme, host, port, path, str(addresses[0]))


def refusal(host: str, address: Address, allowed: Iterable[str]) -> str:
    """Why `address` (which `host` resolved to) may not be reached, in words; nothing when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        address = address.ipv4_mapped
    elif isinstance(address, ipaddress.IPv6Address) and address in NAT64:  # 64:ff9b::a.b.c.d reaches a.b.c.d
        address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    names = [a for a in allowed if _HOST_NAME.fullmatch(a) and not _is_network(a)]
    networks = [ipaddress.ip_network(a, strict=False) for a in allowed if _is_network(a)]
    if address in METADATA:  # the cloud's credentials: only where that very address is listed
        if any(n.num_addresses == 1 and address in n for n in networks):
            return ""
        return f"{address} is the cloud's metadata service"
    why = _special(address)
    if not why or any(_named(host, name) for name in names) or any(address in n for n in networks):
        return ""
    return f"{address} is {why}"


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10,
    read: int = 0,
) -> Answer:
    """Sends one request to the checked address of `url`, following no redirect; reads no more
    than `read` bytes of the answer's body. An OutboundRefused before anything is sent, an
    OutsideError (transient) when the address does not answer."""
    to = target(url)
    wanted = {"Host": to.netloc, **(headers or {})}
    pool: urllib3.HTTPConnectionPool
    if to.scheme == "https":  # the certificate is checked against the name, not the address
        pool = urllib3.HTTPSConnectionPool(
            to.address, to.port, server_hostname=to.host, ca_certs=certifi.where(), cert_reqs="CERT_REQUIRED"
        )
    else:
        pool = urllib3.HTTPConnectionPool(to.address, to.port)
    started = time.monotonic()
    try:
        with pool:
            response = pool.urlopen(
                method,
                to.path,
                body=body,
                headers=wanted,
                redirect=False,
                retries=False,
                preload_content=False,
                timeout=urllib3.Timeout(total=timeout),
            )
            content = response.read(read) if read else b""
            response.release_conn()
    except urllib3.exceptions.HTTPError as error:
        raise OutsideError(f"{to.netloc} {_failure(error, timeout)}", transient=True) from None
    return Answer(response.status, round((time.monotonic() - started) * 1000), content)


def _failure(error: Exception, timeout: float) -> str:
    """What went wrong with a request, in words."""
    if isinstance(error, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError too, to urllib3
        return f"could not be connected to ({error.__context__ or 'refused'})"
    if isinstance(error, urllib3.exceptions.TimeoutError):
        return f"did not answer within {timeout:g} s"
    if isinstance(error, urllib3.exceptions.SSLError):
        return "could not be reached securely: its certificate was not accepted"
    return f"did not answer: {type(error).__name__}"


def validate_url(value: str) -> None:
    """A Django validator: the address may be reached from here (resolved now, and again at each
    request)."""
    if not value:
        return
    try:
        target(value)
    except OutboundRefused as error:
        raise ValidationError(str(error)) from None


def _addresses(host: str, port: int, resolve: Resolver) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise OutboundRefused(f"{host} does not resolve to an address.", transient=True) from None
    addresses = [ipaddress.ip_address(str(entry[4][0]).split("%")[0]) for entry in found]
    if not addresses:
        raise OutboundRefused(f"{host} does not resolve to an address.", transient=True)
    return addresses


def _special(address: Address) -> str:
    """What kind of address that is not a public one, in words; nothing for a public one."""
    for test, words in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_unspecified", "the unspecified address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(address, test):
            return words
    if not address.is_global:
        return "not a public address"
    return ""


def _is_network(item: str) -> bool:
    try:
        ipaddress.ip_network(item, strict=False)
    except ValueError:
        return False
    return True


def _named(host: str, name: str) -> bool:
    """`.example.com` names example.com and its subdomains; any other name, only itself."""
    name = name.rstrip(".").lower()
    host = host.rstrip(".")
    if name.startswith("."):
        return host == name[1:] or host.endswith(name)
    return host == name
