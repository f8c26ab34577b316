import ipaddress

import pytest
from django.test import override_settings

from portal.middleware import client_ip

PROXY = {"REMOTE_ADDR": "10.0.0.2"}


def get(client, **headers):
    with override_settings(TRUSTED_PROXIES=networks_from("10.0.0.0/8")):
        return client.get("/login/", **headers)


@pytest.mark.django_db
def test_request_id_is_made_when_none_is_given(client):
    response = get(client)
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_request_id_from_a_trusted_proxy_is_kept(client):
    response = get(client, HTTP_X_REQUEST_ID="deploy-42-abcdef", **PROXY)
    assert response["X-Request-ID"] == "deploy-42-abcdef"


@pytest.mark.django_db
def test_request_id_from_anyone_else_is_replaced(client):
    """Nobody picks the id their acts are audited under."""
    response = get(client, HTTP_X_REQUEST_ID="deploy-42-abcdef", REMOTE_ADDR="198.51.100.7")
    assert response["X-Request-ID"] != "deploy-42-abcdef" and len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_odd_request_id_is_replaced(client):
    response = get(client, HTTP_X_REQUEST_ID="<script>alert(1)</script>", **PROXY)
    assert "<" not in response["X-Request-ID"] and len(response["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ("", "198.51.100.7", "203.0.113.50", "198.51.100.7"),  # no proxy trusted: header ignored
        ("10.0.0.0/8", "198.51.100.7", "203.0.113.50", "198.51.100.7"),  # not from the proxy
        ("10.0.0.0/8", "10.0.0.2", "203.0.113.50", "203.0.113.50"),  # from the proxy
        (
            "10.0.0.0/8",
            "10.0.0.2",
            "6.6.6.6, 203.0.113.50",
            "203.0.113.50",
        ),  # client-chosen left part
        ("10.0.0.0/8", "10.0.0.2", "203.0.113.50, 10.0.0.9", "203.0.113.50"),  # two proxies
        ("10.0.0.0/8", "10.0.0.2", "garbage", "10.0.0.2"),
        ("10.0.0.0/8", "::ffff:10.0.0.2", "203.0.113.50", "203.0.113.50"),  # IPv4-mapped proxy
        ("", "::ffff:198.51.100.7", "", "198.51.100.7"),  # one spelling per address
        ("", "fe80::1%eth0", "", "fe80::1"),
    ],
)
def test_client_ip_believes_x_forwarded_for_only_from_trusted_proxies(trusted, remote, forwarded, expected):
    with override_settings(TRUSTED_PROXIES=networks_from(trusted)):
        assert client_ip({"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded}) == expected


def networks_from(value: str):
    return [ipaddress.ip_network(item) for item in value.split(",") if item]


@pytest.mark.django_db
def test_hsts_only_when_a_trusted_proxy_says_https(client):
    with override_settings(TRUSTED_PROXIES=networks_from("10.0.0.0/8")):
        spoofed = client.get("/login/", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_PROTO="https")
        proxied = client.get("/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_PROTO="https")
    assert "Strict-Transport-Security" not in spoofed
    assert proxied["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.django_db
def test_pages_carry_security_headers_and_demo_cookies(client):
    response = client.get("/login/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    csrf = response.cookies["csrftoken"]
    # The suite runs as the demo, on plain HTTP: Secure only outside it (test_settings_security).
    assert not csrf["secure"] and csrf["httponly"] and csrf["samesite"] == "Lax"


@pytest.mark.django_db
def test_session_cookie_is_http_only_and_in_the_demo_not_secure(client, user):
    from tests.factories import DEFAULT_PASSWORD

    client.get("/login/")
    response = client.post("/login/", {"username": user.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert not session["secure"] and session["httponly"]


@pytest.mark.django_db
def test_times_are_shown_in_the_viewers_zone(client):
    from tests.conftest import verified_login
    from tests.factories import UserFactory

    viewer = UserFactory(time_zone="Asia/Tokyo")
    verified_login(client, viewer)
    body = client.get("/").content.decode()
    assert "JST" in body
