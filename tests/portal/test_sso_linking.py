"""Single sign-on knows a person by the provider's subject; an existing account is linked on the
first sign-on only when the provider verified the address they share (security M10)."""

import pytest

from portal.models import AuditEvent, User
from portal.roles import Role
from tests.factories import UserFactory
from tests.portal.test_sso import idp, sign_in_with_sso  # noqa: F401 (idp is a fixture)

ADMIN_CLAIMS = {"email": "polly@example.com", "preferred_username": "polly-sso", "groups": ["gl-release"]}


def signed_in_as(client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value else None


@pytest.mark.django_db
@pytest.mark.parametrize("verified", [None, False, "true"])
def test_sso_refuses_to_link_an_account_by_an_unverified_address(client, idp, verified):  # noqa: F811
    local = UserFactory(username="polly", email="polly@example.com", role=Role.RELEASE_MANAGER)
    claims = {**ADMIN_CLAIMS} if verified is None else {**ADMIN_CLAIMS, "email_verified": verified}

    response = sign_in_with_sso(client, idp, claims, amr=["mfa"])

    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert signed_in_as(client) is None
    local.refresh_from_db()
    assert local.oidc_subject is None
    assert not User.objects.filter(username="polly-sso").exists()
    assert not AuditEvent.objects.filter(action__in=["user.sso_link", "auth.sign_in"]).exists()


@pytest.mark.django_db
def test_sso_links_an_account_by_a_verified_address_then_by_subject(client, idp):  # noqa: F811
    local = UserFactory(username="polly", email="polly@example.com", role=Role.RELEASE_MANAGER)

    sign_in_with_sso(client, idp, {**ADMIN_CLAIMS, "email_verified": True}, amr=["mfa"])

    local.refresh_from_db()
    assert signed_in_as(client) == local.pk
    assert local.oidc_subject == "polly@example.com"  # the fake provider's subject
    link = AuditEvent.objects.get(action="user.sso_link")
    assert (link.actor_id, link.object_id, link.after) == (
        None,
        str(local.pk),
        {"subject": local.oidc_subject},
    )
    assert AuditEvent.objects.get(action="auth.sign_in").after == {
        "step": "sso",
        "device": "identity provider",
    }

    # The address moves on at the provider; the subject still names the same person.
    client.logout()
    moved = {**ADMIN_CLAIMS, "email": "p.new@example.com", "sub": local.oidc_subject}
    sign_in_with_sso(client, idp, moved, amr=["mfa"])
    assert signed_in_as(client) == local.pk


@pytest.mark.django_db
def test_sso_another_subject_with_a_linked_address_gets_no_access_to_it(client, idp):  # noqa: F811
    linked = UserFactory(
        username="polly",
        email="polly@example.com",
        role=Role.RELEASE_MANAGER,
        oidc_subject="subject-of-polly",
    )

    response = sign_in_with_sso(
        client, idp, {**ADMIN_CLAIMS, "preferred_username": "polly", "email_verified": True}, amr=["mfa"]
    )

    assert response["Location"].startswith("/login/")
    assert signed_in_as(client) is None
    linked.refresh_from_db()
    assert linked.oidc_subject == "subject-of-polly"
