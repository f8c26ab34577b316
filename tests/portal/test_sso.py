"""Single sign-on through OpenID Connect against a local identity provider."""

from urllib.parse import parse_qs, urlsplit

import pytest

from portal.models import AuditEvent, User
from tests.fakes import FakeIdentityProvider


@pytest.fixture
def idp(settings):
    with FakeIdentityProvider() as provider:
        for name, value in provider.settings().items():
            setattr(settings, name, value)
        settings.AUTHENTICATION_BACKENDS = [
            *settings.AUTHENTICATION_BACKENDS,
            "portal.oidc.GreenlightOIDCBackend",
        ]
        yield provider


def sign_in_with_sso(client, idp, claims: dict, amr: list[str]):
    """What the browser does: start at Greenlight, come back from the provider with a code."""
    start = client.get("/login/sso/")
    assert start.status_code == 302
    query = parse_qs(urlsplit(start["Location"]).query)
    assert start["Location"].startswith(f"{idp.url}/authorize")
    idp.nonce, idp.claims, idp.amr = query["nonce"][0], claims, amr
    return client.get("/login/sso/callback/", {"code": "code-1", "state": query["state"][0]})


@pytest.mark.django_db
def test_sso_is_off_without_configuration(client):
    assert client.get("/login/sso/").status_code == 404
    assert "single sign-on" not in client.get("/login/").content.decode()


@pytest.mark.django_db
def test_sso_creates_the_person_with_the_role_of_their_group(client, idp):
    claims = {"email": "riley@example.com", "preferred_username": "riley", "groups": ["staff", "gl-release"]}
    response = sign_in_with_sso(client, idp, claims, amr=["pwd", "mfa"])
    assert response.status_code == 302 and response["Location"] == "/"
    user = User.objects.get(username="riley")
    assert (user.role, user.email, user.has_usable_password()) == (
        "release_manager",
        "riley@example.com",
        False,
    )
    assert idp.token_requests[0]["client_secret"] == FakeIdentityProvider.CLIENT_SECRET
    event = AuditEvent.objects.get(action="user.create")
    assert event.after["reason"] == "single sign-on" and event.actor_name == "Greenlight"
    # The provider checked a second factor: the overview opens without Greenlight's own code.
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_sso_without_provider_mfa_still_asks_for_greenlights_second_factor(client, idp):
    claims = {"email": "sky@example.com", "preferred_username": "sky", "groups": ["gl-sre"]}
    sign_in_with_sso(client, idp, claims, amr=["pwd"])
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/account/mfa/"


@pytest.mark.django_db
def test_sso_refuses_a_person_in_no_mapped_group(client, idp):
    claims = {"email": "eve@example.com", "preferred_username": "eve", "groups": ["contractors"]}
    response = sign_in_with_sso(client, idp, claims, amr=["mfa"])
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not User.objects.filter(username="eve").exists()
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_sso_follows_a_group_change_and_audits_it(client, idp):
    claims = {"email": "casey@example.com", "preferred_username": "casey", "groups": ["gl-eng"]}
    sign_in_with_sso(client, idp, claims, amr=["mfa"])
    client.logout()
    sign_in_with_sso(client, idp, {**claims, "groups": ["gl-sre"]}, amr=["mfa"])
    assert User.objects.get(username="casey").role == "sre"
    event = AuditEvent.objects.get(action="user.role_set")
    assert (event.before, event.after) == ({"role": "developer"}, {"role": "sre"})
