"""Addresses typed into the settings are reached only when they may be: every address a host
resolves to is checked before anything is sent, the request goes to the address checked, and a
redirect is not followed. Refusals are found without a connection: literal addresses, or a
resolver the test gives; the only traffic is to a server on 127.0.0.1."""

import socket
from http.server import BaseHTTPRequestHandler

import pytest

from integrations import outbound
from integrations.outbound import OutboundRefused, target
from tests.fakes import _Served


def resolver(*addresses: str):
    """getaddrinfo's shape, answering `addresses` for any name and recording what was asked."""
    asked: list[str] = []

    def resolve(host, port, **kwargs):
        asked.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud's metadata service"),
        ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254 is the cloud's metadata service"),
        ("http://[::ffff:169.254.169.254]/", "169.254.169.254 is the cloud's metadata service"),
        ("http://[64:ff9b::a9fe:a9fe]/", "169.254.169.254 is the cloud's metadata service"),
        ("http://[64:ff9b::7f00:1]/", "127.0.0.1 is a loopback address"),
        ("http://169.254.10.1:8080/", "169.254.10.1 is a link-local address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://127.0.0.1:8101/healthz", "127.0.0.1 is a loopback address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://10.0.3.7/", "10.0.3.7 is a private address"),
        ("http://192.168.1.1/", "192.168.1.1 is a private address"),
        ("http://0.0.0.0:8000/", "0.0.0.0 is the unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://100.64.0.1/", "100.64.0.1 is not a public address"),
    ],
)
def test_an_address_that_is_not_public_is_refused_in_words(url, says):
    with pytest.raises(OutboundRefused) as refused:
        target(url, allowed=[], resolve=resolver())
    assert says in str(refused.value) and "OUTBOUND_ALLOWED_HOSTS" in str(refused.value)


def test_a_name_is_refused_when_any_of_its_addresses_may_not_be_reached():
    resolve = resolver("93.184.216.34", "169.254.169.254")
    with pytest.raises(OutboundRefused, match="colours.example.com may not be reached from Greenlight"):
        target("https://colours.example.com/healthz", allowed=[], resolve=resolve)
    assert resolve.asked == ["colours.example.com"]


def test_a_public_address_is_reached_at_the_address_checked():
    found = target(
        "https://colours.example.com:8443/healthz?deep=1", allowed=[], resolve=resolver("93.184.216.34")
    )
    assert (found.host, found.address, found.port, found.path) == (
        "colours.example.com",
        "93.184.216.34",
        8443,
        "/healthz?deep=1",
    )
    assert found.netloc == "colours.example.com:8443"


def test_a_listed_network_or_name_may_be_reached():
    assert target("http://10.0.3.7/", allowed=["10.0.0.0/16"], resolve=resolver()).address == "10.0.3.7"
    assert target("http://green.corp.example/", allowed=[".corp.example"], resolve=resolver("10.9.9.9"))
    assert target("http://pipeline.internal/", allowed=["pipeline.internal"], resolve=resolver("10.1.1.1"))
    with pytest.raises(OutboundRefused):  # a listed domain does not name its look-alikes
        target("http://evilcorp.example/", allowed=[".corp.example"], resolve=resolver("10.9.9.9"))


def test_the_metadata_service_is_reached_only_where_that_very_address_is_listed():
    with pytest.raises(OutboundRefused, match="metadata"):
        target("http://169.254.169.254/", allowed=["169.254.0.0/16", "instance-data"], resolve=resolver())
    with pytest.raises(OutboundRefused, match="metadata"):
        target("http://instance-data/", allowed=["instance-data"], resolve=resolver("169.254.169.254"))
    assert target("http://169.254.169.254/", allowed=["169.254.169.254"], resolve=resolver())


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://93.184.216.34/", "is not an address"),
        ("file:///etc/passwd", "is not an address"),
        ("http://93.184.216.34:99999/", "is not an address"),
        ("http://admin:pw@93.184.216.34/", "carries a user name or password"),
    ],
)
def test_what_is_not_an_http_address_is_refused(url, says):
    with pytest.raises(OutboundRefused, match=says):
        target(url, allowed=[], resolve=resolver())


def test_a_name_that_does_not_resolve_is_refused():
    def fails(host, port, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(OutboundRefused, match="nowhere.example does not resolve") as refused:
        target("http://nowhere.example/", allowed=[], resolve=fails)
    assert refused.value.transient


class Server(_Served):
    """Answers every request with `status` (and `location`), counting them and keeping Host."""

    def __init__(self, status=200, location=""):
        self.hits, self.hosts = 0, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.hits += 1
                fake.hosts.append(self.headers["Host"])
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "12")
                self.end_headers()
                self.wfile.write(b"secret-token")

            def log_message(self, *args):
                pass

        self._serve(Handler)


@pytest.fixture
def server():
    served = Server()
    yield served
    served.close()


def test_a_loopback_address_not_listed_is_refused_before_a_connection(server, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(OutboundRefused, match="127.0.0.1 is a loopback address"):
        outbound.request("GET", server.url + "/healthz")
    assert server.hits == 0


def test_a_listed_host_is_asked_by_its_name_and_the_body_is_read_only_when_wanted(server, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    port = server.server.server_port
    answer = outbound.request("GET", f"http://localhost:{port}/healthz")
    assert (answer.status, answer.body) == (200, b"")
    assert server.hosts == [f"localhost:{port}"]
    assert outbound.request("GET", server.url, read=6).body == b"secret"


def test_a_redirect_is_not_followed(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    redirecting = Server(status=302, location="http://169.254.169.254/latest/meta-data/")
    try:
        answer = outbound.request("GET", redirecting.url + "/healthz")
    finally:
        redirecting.close()
    assert answer.redirect and answer.status == 302 and redirecting.hits == 1
