import pytest
from django.db import transaction

from portal.models import AuditEvent, Notification
from portal.services import audit_record
from tests.conftest import verified_login
from tests.factories import DEFAULT_PASSWORD, otp_code, totp_device


@pytest.mark.django_db
def test_home_needs_a_signed_in_user(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/"


@pytest.mark.django_db
def test_login_form_shows_the_error_beside_the_form(client, user):
    response = client.post("/login/", {"username": user.username, "password": "wrong"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Please enter a correct username and password" in body
    assert 'role="alert"' in body


@pytest.mark.django_db
def test_login_form_marks_a_missing_field(client):
    body = client.post("/login/", {"username": "someone"}).content.decode()
    assert 'class="field has-error"' in body and "This field is required." in body


@pytest.mark.django_db
def test_forbidden_page_says_what_is_missing(client, user):
    verified_login(client, user)
    response = client.get("/audit/")
    assert response.status_code == 403
    assert "You need the right to read the audit trail (audit.view)." in response.content.decode()


@pytest.mark.django_db
def test_unknown_page_is_an_html_404(client, user):
    verified_login(client, user)
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and b"Nothing here" in response.content


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_audit_page_filters_and_shows_a_bad_filter_beside_its_field(client, audit_viewer):
    with transaction.atomic():
        audit_record(actor=audit_viewer, action="change_request.submit", object_repr="CHG-000001")
        audit_record(actor=None, action="deployment.start", object_repr="Deployment 1")
    verified_login(client, audit_viewer)

    body = client.get("/audit/?action=deployment").content.decode()
    assert "Deployment 1" in body and "CHG-000001" not in body

    response = client.get("/audit/?since=not-a-date")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="field has-error"' in body and "Enter a valid date/time." in body


@pytest.mark.django_db
def test_csrf_is_checked_on_forms(user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": user.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 403
    assert "This form expired or came from another site" in response.content.decode()


@pytest.mark.django_db
def test_test_notification_form_queues_and_audits(client, sre, django_capture_on_commit_callbacks):
    verified_login(client, sre)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            "/notifications/test/", {"channel": "slack", "recipient": "#production-alerts"}
        )
    assert response.status_code == 302 and response["Location"] == "/"
    notification = Notification.objects.get()
    assert (notification.channel, notification.recipient, notification.status) == (
        "slack",
        "#production-alerts",
        Notification.Status.PENDING,
    )
    assert len(callbacks) == 1
    event = AuditEvent.objects.get(action="notification.test_send")
    assert event.actor_id == sre.pk and event.object_id == str(notification.pk)
    assert "Queued a test message to #production-alerts" in client.get("/").content.decode()


@pytest.mark.django_db
def test_test_notification_form_shows_a_bad_recipient_beside_its_field(client, sre):
    verified_login(client, sre)
    response = client.post("/notifications/test/", {"channel": "email", "recipient": "not an address"})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'class="field has-error"' in body and "Enter an e-mail address such as ops@example.com." in body
    assert not Notification.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_test_notification_needs_the_permission(client, user):
    verified_login(client, user)
    response = client.post("/notifications/test/", {"channel": "slack", "recipient": "#x"})
    assert response.status_code == 403
    assert "You need the right to send test notifications (notification.test)" in response.content.decode()
    assert not Notification.objects.exists()
    assert "Test a notification channel" not in client.get("/").content.decode()


@pytest.mark.django_db
def test_people_page_changes_a_role_with_a_code_and_audits_it(client, policy_admin, developer):
    verified_login(client, policy_admin)
    device = totp_device(policy_admin)
    response = client.post(
        f"/people/{developer.pk}/", {"action_form": "role", "role-role": "sre", "role-otp": otp_code(device)}
    )
    assert response.status_code == 302
    developer.refresh_from_db()
    assert developer.role == "sre"
    assert AuditEvent.objects.get(action="user.role_set").actor_id == policy_admin.pk


@pytest.mark.django_db
def test_people_page_refuses_a_wrong_code_and_changes_nothing(client, policy_admin, developer):
    verified_login(client, policy_admin)
    response = client.post(
        f"/people/{developer.pk}/", {"action_form": "role", "role-role": "sre", "role-otp": "00000a"}
    )
    assert response.status_code == 400
    assert "That code is not valid" in response.content.decode()
    developer.refresh_from_db()
    assert developer.role == "developer" and not AuditEvent.objects.filter(action="user.role_set").exists()


@pytest.mark.django_db
def test_people_page_refuses_changing_your_own_capacities(client, policy_admin):
    verified_login(client, policy_admin)
    response = client.post(
        f"/people/{policy_admin.pk}/",
        {
            "action_form": "capacity",
            "capacity-capacity": "security",
            "capacity-action": "grant",
            "capacity-otp": otp_code(totp_device(policy_admin)),
        },
    )
    assert response.status_code == 400
    assert "Nobody grants themselves a capacity" in response.content.decode()


@pytest.mark.django_db
def test_people_pages_need_the_right(client, developer):
    verified_login(client, developer)
    assert client.get("/people/").status_code == 403
    assert client.get(f"/people/{developer.pk}/").status_code == 403


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_audit_page_with_a_tampered_cursor_starts_over(client, audit_viewer):
    verified_login(client, audit_viewer)
    response = client.get("/audit/", {"cursor": "garbage", "action": "change"})
    assert response.status_code == 302 and response["Location"] == "/audit/?action=change"


@pytest.mark.django_db
def test_every_page_names_a_queue_no_worker_reads_and_a_silent_beat(client, user, monkeypatch):
    from datetime import timedelta

    from django.core.cache import cache

    from portal import clock, heartbeat

    queues = ["celery", "celery.deployments", "celery.rollbacks", "celery.notifications"]
    verified_login(client, user)
    heartbeat.stamp_queues(queues)
    heartbeat.stamp(heartbeat.BEAT_KEY)
    assert "process-banner" not in client.get("/").content.decode()

    three_minutes_ago = (clock.now() - timedelta(minutes=3, seconds=5)).isoformat()
    cache.set(heartbeat.queue_key("celery.rollbacks"), three_minutes_ago)
    body = client.get("/changes/").content.decode()
    assert "No Celery worker has read the queue celery.rollbacks for 3 minutes: rollbacks do not run." in body
    assert body.count('class="process-banner"') == 1

    cache.set_many({heartbeat.queue_key(q): three_minutes_ago for q in queues})  # no worker at all
    cache.delete(heartbeat.BEAT_KEY)  # and beat never seen, by a server up for more than a minute
    monkeypatch.setattr(heartbeat, "_started", heartbeat._started - 61)
    body = client.get("/").content.decode()
    assert (
        "No Celery worker has been seen for 3 minutes: deployments do not advance, rollbacks do not run "
        "and notifications are not sent."
    ) in body
    assert "Celery beat has not been seen since this server started" in body
    assert body.count('class="process-banner"') == 2
