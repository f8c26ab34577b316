import pytest
from celery.exceptions import Retry
from django.core import mail
from django.db import transaction

from portal.models import Notification
from portal.services import notification_send
from portal.tasks import MAX_DELIVERY_ATTEMPTS, notification_deliver
from tests.fakes import FakeSlack


def queue(channel="slack", recipient="#production-alerts") -> Notification:
    with transaction.atomic():
        return notification_send(
            channel=channel, recipient=recipient, subject="Deployed v1.2.3", body="All green."
        )


@pytest.fixture
def slack(settings):
    with FakeSlack() as fake:
        settings.SLACK_BOT_TOKEN = "xoxb-test-token"
        settings.SLACK_API_URL = fake.url
        settings.NOTIFY_SLACK_ENABLED = True
        yield fake


@pytest.mark.django_db
def test_unconfigured_channel_only_logs(settings, caplog):
    settings.NOTIFY_SLACK_ENABLED = False
    notification = queue()
    assert notification_deliver(notification.pk) == Notification.Status.LOGGED
    notification.refresh_from_db()
    assert notification.status == Notification.Status.LOGGED and notification.sent_at is not None
    assert "would post to #production-alerts: Deployed v1.2.3" in caplog.text


@pytest.mark.django_db
def test_email_is_sent_through_the_configured_backend(settings):
    settings.NOTIFY_EMAIL_ENABLED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    notification = queue("email", "ops@example.com")
    assert notification_deliver(notification.pk) == Notification.Status.SENT
    assert [(m.to, m.subject) for m in mail.outbox] == [(["ops@example.com"], "Deployed v1.2.3")]


@pytest.mark.django_db
def test_slack_message_is_posted_with_the_bot_token(slack):
    notification = queue()
    assert notification_deliver(notification.pk) == Notification.Status.SENT
    assert len(slack.posts) == 1
    post = slack.posts[0]
    assert post["method"] == "chat.postMessage"
    assert post["auth"] == "Bearer xoxb-test-token"
    assert post["channel"] == "#production-alerts"
    assert "Deployed v1.2.3" in post["text"] and "All green." in post["text"]


@pytest.mark.django_db
def test_delivery_runs_once_when_the_task_runs_twice(slack):
    notification = queue()
    notification_deliver(notification.pk)
    assert notification_deliver(notification.pk) == "skipped"
    assert len(slack.posts) == 1


@pytest.mark.django_db
def test_slack_refusal_fails_for_good_with_the_reason(slack):
    slack.reply = {"ok": False, "error": "channel_not_found"}
    notification = queue(recipient="#nowhere")
    assert notification_deliver(notification.pk) == Notification.Status.FAILED
    notification.refresh_from_db()
    assert notification.last_error == "Slack refused the message: channel_not_found"


@pytest.mark.django_db
def test_slack_outage_is_retried_then_given_up(slack):
    slack.reply = {"ok": False, "error": "service_unavailable"}
    notification = queue()
    for attempt in range(1, MAX_DELIVERY_ATTEMPTS):
        with pytest.raises(Retry):
            notification_deliver.apply(args=[notification.pk], throw=True)
        notification.refresh_from_db()
        assert (notification.attempts, notification.status) == (
            attempt,
            Notification.Status.PENDING,
        )
    assert notification_deliver(notification.pk) == Notification.Status.FAILED
    notification.refresh_from_db()
    assert notification.attempts == MAX_DELIVERY_ATTEMPTS
    assert "service_unavailable" in notification.last_error


@pytest.mark.django_db
def test_notification_task_is_queued_only_after_commit(monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr(notification_deliver, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            notification_send(channel="slack", recipient="#incidents", subject="x", body="y")
            raise RuntimeError("rolled back")
    assert callbacks == [] and queued == [] and not Notification.objects.exists()

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        notification = notification_send(channel="slack", recipient="#incidents", subject="x", body="y")
    assert queued == [notification.pk]


@pytest.mark.django_db
def test_unknown_channel_is_refused():
    with pytest.raises(ValueError, match="unknown notification channel"), transaction.atomic():
        notification_send(channel="fax", recipient="x", subject="x", body="y")
