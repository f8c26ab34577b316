"""Every role against every API endpoint, and the second factor every sensitive action takes.

The statuses are written out per role from the issue's matrix, not computed from portal.roles, so a
wrong grant there shows up here.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from portal import clock, services
from portal.models import AuditEvent, BreakGlassSession, User, UserCapacity
from portal.roles import Capacity, Role
from tests.conftest import client_for
from tests.factories import UserFactory, otp_code, totp_device

ROLES = [
    "developer",
    "qa",
    "devops",
    "release_manager",
    "sre",
    "admin",
    "auditor",
    "policy_admin",  # a release manager who holds the policy_admin capacity
    "break_glass",  # an administrator inside an open break-glass session
]
OTP = object()  # replaced by a fresh code from the caller's authenticator at call time

# method, path, body, rights a refusal names, status per role in ROLES order.
ENDPOINTS = [
    ("get", "/api/v1/audit/verify/", None, ["audit.view"], [403, 403, 403, 200, 200, 403, 200, 200, 200]),
    ("get", "/api/v1/audit/{event}/", None, ["audit.view"], [403, 403, 403, 200, 200, 403, 200, 200, 200]),
    (
        "post",
        "/api/v1/notifications/test/",
        {"channel": "slack", "recipient": "#production-alerts"},
        ["notification.test"],
        [403, 403, 403, 403, 202, 403, 403, 202, 202],
    ),
    ("get", "/api/v1/me/", None, [], [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    (
        "get",
        "/api/v1/users/",
        None,
        ["role.grant", "audit.view"],
        [403, 403, 403, 200, 200, 403, 200, 200, 200],
    ),
    (
        "post",
        "/api/v1/users/{target}/role/",
        {"role": "qa", "otp": OTP},
        ["role.grant"],
        [403, 403, 403, 403, 403, 403, 403, 200, 200],
    ),
    (
        "post",
        "/api/v1/users/{target}/capacities/",
        {"capacity": "product", "otp": OTP},
        ["role.grant"],
        [403, 403, 403, 403, 403, 403, 403, 200, 200],
    ),
    (
        "delete",
        "/api/v1/users/{target}/capacities/",
        {"capacity": "security", "otp": OTP},
        ["role.grant"],
        [403, 403, 403, 403, 403, 403, 403, 200, 200],
    ),
    (
        "post",
        "/api/v1/users/{target}/unlock/",
        {"otp": OTP},
        ["role.grant"],
        [403, 403, 403, 403, 403, 403, 403, 200, 200],
    ),
    ("get", "/api/v1/break-glass/", None, [], [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    # The administrator already inside break-glass is refused a second session (400), not the right.
    (
        "post",
        "/api/v1/break-glass/",
        {"reason": "Primary database is down", "otp": OTP},
        ["break_glass.open"],
        [403, 403, 403, 403, 403, 201, 403, 403, 400],
    ),
    # Closing another administrator's open session.
    (
        "post",
        "/api/v1/break-glass/{session}/close/",
        None,
        ["break_glass.open"],
        [403, 403, 403, 403, 403, 200, 403, 403, 200],
    ),
    ("get", "/api/v1/tokens/", None, [], [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    (
        "post",
        "/api/v1/tokens/",
        {"name": "CI deploy job", "expires_in_days": 30, "otp": OTP},
        [],
        [201, 201, 201, 201, 201, 201, 201, 201, 201],
    ),
    ("delete", "/api/v1/tokens/{token}/", None, [], [200, 200, 200, 200, 200, 200, 200, 200, 200]),
]
AUDIT_LIST_STATUSES = [403, 403, 403, 200, 200, 403, 200, 200, 200]


KNOWN_BUGS: dict = {}


def matrix_cases():
    for method, path, body, rights, statuses in ENDPOINTS:
        for role, status in zip(ROLES, statuses, strict=True):
            yield pytest.param(
                role,
                method,
                path,
                body,
                rights,
                status,
                id=f"{role}-{method.upper()}-{path}",
                marks=KNOWN_BUGS.get((role, method, path), ()),
            )


def open_break_glass(user) -> BreakGlassSession:
    now = clock.now()
    return BreakGlassSession.objects.create(
        user=user, reason="Primary database is down", opened_at=now, expires_at=now + timedelta(hours=1)
    )


def caller_for(request, role: str) -> User:
    if role == "break_glass":
        user = request.getfixturevalue("admin")
        open_break_glass(user)
        return user
    return request.getfixturevalue(role)


def fill(body, user):
    if body is None:
        return None
    return {key: otp_code(totp_device(user)) if value is OTP else value for key, value in body.items()}


def assert_refusal_names(response, rights):
    body = response.json()
    assert set(body) == {"detail", "code"} and body["code"] == "permission_denied", body
    for right in rights:
        assert f"({right})" in body["detail"], body


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "method", "path", "body", "rights", "expected"), list(matrix_cases()))
def test_api_endpoint_answers_each_role_as_the_matrix_says(
    request, role, method, path, body, rights, expected
):
    caller = caller_for(request, role)
    target = UserFactory(username="target", role=Role.DEVELOPER, capacities=[Capacity.SECURITY])
    with transaction.atomic():
        event = services.audit_record(actor=None, action="demo.thing", object_type="demo")
    other_session = open_break_glass(UserFactory(username="opener", role=Role.ADMIN))
    token, _secret = services.api_token_create(actor=caller, name="CI", expires_in_days=30)
    url = path.format(target=target.pk, event=event.pk, session=other_session.pk, token=token.token_key)

    response = getattr(client_for(caller), method)(url, fill(body, caller), format="json")

    assert response.status_code == expected, response.json()
    if expected == 403:
        assert_refusal_names(response, rights)


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize(("role", "expected"), list(zip(ROLES, AUDIT_LIST_STATUSES, strict=True)))
def test_api_audit_list_answers_each_role_as_the_matrix_says(request, role, expected):
    caller = caller_for(request, role)

    response = client_for(caller).get("/api/v1/audit/")

    assert response.status_code == expected, response.json()
    if expected == 403:
        assert_refusal_names(response, ["audit.view"])


# Sensitive actions: each takes a fresh code from the caller's own authenticator.


@dataclass
class Sensitive:
    actor: User
    method: str
    url: str
    body: dict
    action: str
    accepted: int

    def send(self, client, **extra):
        return getattr(client, self.method)(self.url, {**self.body, **extra}, format="json")

    def audited(self) -> int:
        return AuditEvent.objects.filter(action=self.action, actor_id=self.actor.pk).count()


SENSITIVE = {
    "role_set": ("post", "/api/v1/users/{target}/role/", {"role": "qa"}, "user.role_set", 200),
    "capacity_grant": (
        "post",
        "/api/v1/users/{target}/capacities/",
        {"capacity": "product"},
        "user.capacity_grant",
        200,
    ),
    "capacity_revoke": (
        "delete",
        "/api/v1/users/{target}/capacities/",
        {"capacity": "security"},
        "user.capacity_revoke",
        200,
    ),
    "unlock": ("post", "/api/v1/users/{target}/unlock/", {}, "user.unlock", 200),
    "break_glass_open": (
        "post",
        "/api/v1/break-glass/",
        {"reason": "Primary database is down"},
        "break_glass.open",
        201,
    ),
    # Windows and freezes decide when production may change; removing a freeze reopens deploys.
    "window_create": (
        "post",
        "/api/v1/windows/",
        {"environment": "production", "weekdays": [4], "start_time": "02:00", "end_time": "03:00"},
        "window.create",
        201,
    ),
    "window_delete": ("delete", "/api/v1/windows/{window}/", {}, "window.delete", 204),
    "freeze_create": (
        "post",
        "/api/v1/freezes/",
        {
            "environment": "production",
            "starts_at": f"{datetime.now(UTC) + timedelta(days=40):%Y-%m-%dT00:00:00Z}",
            "ends_at": f"{datetime.now(UTC) + timedelta(days=47):%Y-%m-%dT00:00:00Z}",
            "reason": "Holidays",
        },
        "freeze.create",
        201,
    ),
    "freeze_delete": ("delete", "/api/v1/freezes/{freeze}/", {}, "freeze.delete", 204),
}


@pytest.fixture(params=list(SENSITIVE))
def sensitive(request, policy_admin, admin) -> Sensitive:
    method, path, body, action, accepted = SENSITIVE[request.param]
    actor = admin if request.param == "break_glass_open" else policy_admin
    totp_device(actor)
    target = UserFactory(username="target", role=Role.DEVELOPER, capacities=[Capacity.SECURITY])
    window, freeze = calendar_entries()
    url = path.format(target=target.pk, window=window.pk, freeze=freeze.pk)
    return Sensitive(actor, method, url, body, action, accepted)


def calendar_entries():
    """A window and a freeze of production, kept by another release manager (so the actor's own
    audit events start at none)."""
    from datetime import time

    from changes.services import freeze_create, window_create
    from tests.factories import EnvironmentFactory

    keeper = UserFactory(username="keeper", role=Role.RELEASE_MANAGER)
    production = EnvironmentFactory()
    with transaction.atomic():
        window = window_create(
            actor=keeper, environment=production, weekdays=[1], start_time=time(2), end_time=time(5)
        )
        freeze = freeze_create(
            actor=keeper,
            environment=production,
            reason="Launch",
            starts_at=clock.now() + timedelta(days=30),
            ends_at=clock.now() + timedelta(days=32),
        )
    return window, freeze


def token_client(user) -> APIClient:
    _token, secret = services.api_token_create(actor=user, name="CI", expires_in_days=30)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def wrong(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


@pytest.mark.django_db
def test_sensitive_action_without_otp_is_refused(sensitive):
    response = sensitive.send(client_for(sensitive.actor))

    assert response.status_code == 403
    assert "`otp`" in response.json()["detail"]
    assert sensitive.audited() == 0


@pytest.mark.django_db
def test_sensitive_action_with_wrong_otp_is_refused(sensitive):
    code = wrong(otp_code(totp_device(sensitive.actor)))

    response = sensitive.send(client_for(sensitive.actor), otp=code)

    assert response.status_code == 403
    assert response.json()["detail"] == "That code is not valid or was already used. Enter the current code."
    assert sensitive.audited() == 0


@pytest.mark.django_db
def test_sensitive_action_with_reused_otp_is_refused(sensitive):
    device = totp_device(sensitive.actor)
    code = otp_code(device)
    assert device.verify_token(code)  # used already, say at sign-in

    response = sensitive.send(client_for(sensitive.actor), otp=code)

    assert response.status_code == 403
    assert "already used" in response.json()["detail"]
    assert sensitive.audited() == 0


@pytest.mark.django_db
def test_sensitive_action_from_unverified_session_is_refused(sensitive):
    client = client_for(sensitive.actor, verified=False)

    response = sensitive.send(client, otp=otp_code(totp_device(sensitive.actor)))

    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert "/login/otp/" in response.json()["detail"]
    assert sensitive.audited() == 0


@pytest.mark.django_db
def test_sensitive_action_by_token_without_otp_is_refused(sensitive):
    response = sensitive.send(token_client(sensitive.actor))

    assert response.status_code == 403
    assert "`otp`" in response.json()["detail"]
    assert sensitive.audited() == 0


@pytest.mark.django_db
def test_sensitive_action_by_token_with_otp_is_accepted(sensitive):
    client = token_client(sensitive.actor)

    response = sensitive.send(client, otp=otp_code(totp_device(sensitive.actor)))

    assert response.status_code == sensitive.accepted, response.json()
    assert sensitive.audited() == 1


@pytest.mark.django_db
def test_sensitive_action_by_verified_session_with_otp_is_accepted(sensitive):
    client = client_for(sensitive.actor)

    response = sensitive.send(client, otp=otp_code(totp_device(sensitive.actor)))

    assert response.status_code == sensitive.accepted, response.json()
    assert sensitive.audited() == 1


# The rules behind the grants.


@pytest.mark.django_db
def test_role_set_on_oneself_is_refused(policy_admin):
    client = client_for(policy_admin)

    response = client.post(
        f"/api/v1/users/{policy_admin.pk}/role/",
        {"role": "admin", "otp": otp_code(totp_device(policy_admin))},
        format="json",
    )

    assert response.status_code == 400
    assert "Nobody changes their own role" in response.json()["detail"]
    policy_admin.refresh_from_db()
    assert policy_admin.role == Role.RELEASE_MANAGER
    assert not AuditEvent.objects.filter(action="user.role_set").exists()


@pytest.mark.django_db
def test_capacity_grant_to_oneself_is_refused(policy_admin):
    response = client_for(policy_admin).post(
        f"/api/v1/users/{policy_admin.pk}/capacities/",
        {"capacity": "security", "otp": otp_code(totp_device(policy_admin))},
        format="json",
    )

    assert response.status_code == 400
    assert "Nobody grants themselves" in response.json()["detail"]
    assert not UserCapacity.objects.filter(user=policy_admin, capacity="security").exists()
    assert not AuditEvent.objects.filter(action="user.capacity_grant").exists()


@pytest.mark.django_db
def test_capacity_grant_to_auditor_is_refused(policy_admin, auditor):
    response = client_for(policy_admin).post(
        f"/api/v1/users/{auditor.pk}/capacities/",
        {"capacity": "security", "otp": otp_code(totp_device(policy_admin))},
        format="json",
    )

    assert response.status_code == 400
    assert "cannot hold" in response.json()["detail"]
    assert not UserCapacity.objects.filter(user=auditor).exists()
    assert not AuditEvent.objects.filter(action="user.capacity_grant").exists()


@pytest.mark.django_db
def test_role_set_to_auditor_is_refused_while_capacities_are_held(policy_admin):
    target = UserFactory(username="target", role=Role.DEVELOPER, capacities=[Capacity.SECURITY])

    response = client_for(policy_admin).post(
        f"/api/v1/users/{target.pk}/role/",
        {"role": "auditor", "otp": otp_code(totp_device(policy_admin))},
        format="json",
    )

    assert response.status_code == 400
    target.refresh_from_db()
    assert target.role == Role.DEVELOPER
    assert not AuditEvent.objects.filter(action="user.role_set").exists()


@pytest.mark.django_db
def test_role_set_audit_event_records_before_and_after(policy_admin):
    target = UserFactory(username="target", role=Role.DEVELOPER)

    response = client_for(policy_admin).post(
        f"/api/v1/users/{target.pk}/role/",
        {"role": "sre", "otp": otp_code(totp_device(policy_admin))},
        format="json",
    )

    assert response.status_code == 200 and response.json()["role"] == "sre"
    event = AuditEvent.objects.get(action="user.role_set")
    assert (event.actor_id, event.object_id) == (policy_admin.pk, str(target.pk))
    assert (event.before, event.after) == ({"role": "developer"}, {"role": "sre"})


@pytest.mark.django_db
def test_capacity_grant_is_undone_when_its_audit_event_cannot_be_written(policy_admin):
    """Were the event written after the grant committed, the grant would stay without one."""
    target = UserFactory(username="target", role=Role.DEVELOPER)
    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute(
            "ALTER TABLE portal_auditevent ADD CONSTRAINT test_refuse_grant_events "
            "CHECK (action <> 'user.capacity_grant')"
        )
    client = client_for(policy_admin)
    client.raise_request_exception = False

    response = client.post(
        f"/api/v1/users/{target.pk}/capacities/",
        {"capacity": "product", "otp": otp_code(totp_device(policy_admin))},
        format="json",
    )

    assert response.status_code == 500 and response.json()["code"] == "server_error"
    assert not UserCapacity.objects.filter(user=target).exists()
