"""Break-glass: an administrator's full rights exist only inside a session opened with a reason and a
code, announced, marked on every act, and ended by the clock or by hand."""

from datetime import timedelta

import pytest

from portal import clock, services
from portal.models import AccessPolicy, AuditEvent, BreakGlassSession, Notification
from portal.roles import Right, Role
from tests.conftest import client_for, verified_login
from tests.factories import UserFactory, otp_code, totp_device

REASON = "Primary database is down and the runbook needs a manual failover"
# What an administrator holds outside break-glass, written out rather than read from the matrix.
ADMIN_NORMAL_RIGHTS = [
    "break_glass.open",
    "change.view",
    "deployment.view",
    "environment.view",
    "incident.view",
]


@pytest.fixture
def policy(db) -> AccessPolicy:
    policy = AccessPolicy.current()
    policy.break_glass_minutes = 30
    policy.announce_slack_channel = "#break-glass"
    policy.announce_email = "security@example.com"
    policy.save()
    return policy


def open_session(client, admin, **body):
    data = {"reason": REASON, "otp": otp_code(totp_device(admin)), **body}
    return client.post(
        "/api/v1/break-glass/", {k: v for k, v in data.items() if v is not None}, format="json"
    )


def rights(client) -> list[str]:
    return client.get("/api/v1/me/").json()["rights"]


@pytest.mark.django_db
def test_break_glass_admin_outside_a_session_lacks_deploy_and_audit(admin):
    assert not admin.has_perm(Right.DEPLOYMENT_DEPLOY)
    assert not admin.has_perm(Right.AUDIT_VIEW)

    response = client_for(admin).get("/api/v1/audit/verify/")

    assert response.status_code == 403
    assert "(audit.view)" in response.json()["detail"]


@pytest.mark.django_db
def test_break_glass_open_needs_a_reason(admin, policy):
    response = open_session(client_for(admin), admin, reason="")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("reason: ")
    assert not BreakGlassSession.objects.exists()


@pytest.mark.django_db
def test_break_glass_open_needs_an_otp(admin, policy):
    response = open_session(client_for(admin), admin, otp="")

    assert response.status_code == 403
    assert "`otp`" in response.json()["detail"]
    assert not BreakGlassSession.objects.exists()


@pytest.mark.django_db
def test_break_glass_open_is_audited_and_announced(admin, policy):
    response = open_session(client_for(admin), admin)

    assert response.status_code == 201
    session = BreakGlassSession.objects.get()
    assert response.json()["id"] == session.pk and response.json()["active"] is True
    assert session.expires_at - session.opened_at == timedelta(minutes=30)
    event = AuditEvent.objects.get(action="break_glass.open")
    assert (event.actor_id, event.object_id) == (admin.pk, str(session.pk))
    assert event.after["reason"] == REASON and event.break_glass_session_id == session.pk
    announced = Notification.objects.order_by("channel")
    assert [(n.channel, n.recipient) for n in announced] == [
        ("email", "security@example.com"),
        ("slack", "#break-glass"),
    ]
    assert all(admin.display_name in n.subject and REASON in n.body for n in announced)


@pytest.mark.django_db
def test_break_glass_gives_every_right_and_marks_every_act(admin, policy):
    client = client_for(admin)
    target = UserFactory(username="target", role=Role.DEVELOPER)
    assert open_session(client, admin).status_code == 201
    session = BreakGlassSession.objects.get()

    assert rights(client) == sorted(Right.values)
    notified = client.post(
        "/api/v1/notifications/test/", {"channel": "slack", "recipient": "#ops"}, format="json"
    )
    role_set = client.post(
        f"/api/v1/users/{target.pk}/role/",
        {"role": "qa", "otp": otp_code(totp_device(admin))},
        format="json",
    )

    assert (notified.status_code, role_set.status_code) == (202, 200)
    acts = AuditEvent.objects.filter(actor_id=admin.pk)
    assert sorted(acts.values_list("action", flat=True)) == [
        "break_glass.open",
        "notification.test_send",
        "user.role_set",
    ]
    assert {event.break_glass_session_id for event in acts} == {session.pk}


@pytest.mark.django_db
def test_break_glass_ends_by_itself_when_the_clock_passes_expiry(admin, policy):
    client = client_for(admin)
    assert open_session(client, admin).status_code == 201

    clock.shift(timedelta(minutes=29))
    assert rights(client) == sorted(Right.values)

    clock.shift(timedelta(minutes=2))
    assert rights(client) == ADMIN_NORMAL_RIGHTS
    refused = client.post("/api/v1/notifications/test/", {"channel": "slack", "recipient": "#ops"})
    assert refused.status_code == 403
    assert client.get("/api/v1/break-glass/").json()[0]["active"] is False
    assert admin.break_glass_session() is None


@pytest.mark.django_db
def test_break_glass_act_after_expiry_is_not_marked(admin, policy):
    client = client_for(admin)
    assert open_session(client, admin).status_code == 201
    clock.shift(timedelta(minutes=31))
    assert open_session(client, admin).status_code == 201  # a second session: the first has ended

    first, second = BreakGlassSession.objects.order_by("opened_at")
    events = AuditEvent.objects.filter(action="break_glass.open").order_by("id")
    assert [e.break_glass_session_id for e in events] == [first.pk, second.pk]


@pytest.mark.django_db
def test_break_glass_close_early_drops_rights_at_once(admin, policy):
    client = client_for(admin)
    session_id = open_session(client, admin).json()["id"]

    response = client.post(f"/api/v1/break-glass/{session_id}/close/")

    assert response.status_code == 200 and response.json()["active"] is False
    assert rights(client) == ADMIN_NORMAL_RIGHTS
    closed = BreakGlassSession.objects.get()
    assert closed.closed_by_id == admin.pk and closed.closed_at is not None
    assert AuditEvent.objects.filter(action="break_glass.close", actor_id=admin.pk).count() == 1
    assert client.post(f"/api/v1/break-glass/{session_id}/close/").status_code == 400


@pytest.mark.django_db
def test_break_glass_non_admin_cannot_open(release_manager, policy):
    response = open_session(client_for(release_manager), release_manager)

    assert response.status_code == 403
    assert "(break_glass.open)" in response.json()["detail"]
    assert not BreakGlassSession.objects.exists()
    with pytest.raises(services.AccessError, match="Only administrators"):
        services.break_glass_open(actor=release_manager, reason=REASON)


@pytest.mark.django_db
def test_break_glass_page_refuses_a_wrong_code(client, admin, policy):
    verified_login(client, admin)
    wrong = f"{(int(otp_code(totp_device(admin))) + 500_000) % 1_000_000:06d}"

    response = client.post("/break-glass/", {"reason": REASON, "otp": wrong})

    assert response.status_code == 400
    assert "That code is not valid or was already used" in response.content.decode()
    assert not BreakGlassSession.objects.exists()


@pytest.mark.django_db
def test_break_glass_page_opens_and_every_page_shows_the_banner(client, admin, policy):
    verified_login(client, admin)

    response = client.post("/break-glass/", {"reason": REASON, "otp": otp_code(totp_device(admin))})

    assert response.status_code == 302 and response["Location"] == "/break-glass/"
    assert BreakGlassSession.objects.get().user == admin
    assert "Break-glass session open: full rights until" in client.get("/").content.decode()
