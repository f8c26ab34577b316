import contextlib
import smtplib
import threading
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.db import connections, transaction

from integrations import notify as channels
from portal import clock, notify
from portal.models import Notification
from portal.services import (
    MAX_DELIVERY_ATTEMPTS,
    NOTIFICATION_CLAIM_TIMEOUT,
    notification_claim,
    notification_send,
    notifications_reclaim,
)
from portal.tasks import notification_deliver, retry_delay
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
def test_delivery_runs_once_when_the_task_runs_again_after_it(slack):
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
@pytest.mark.parametrize(
    ("status", "reply"),
    [(200, {"ok": False, "error": "service_unavailable"}), (503, {"ok": False}), (429, {"ok": False})],
)
def test_slack_outage_is_retried_with_backoff_then_given_up(slack, monkeypatch, status, reply):
    slack.status, slack.reply = status, reply
    notification = queue()
    countdowns = []
    original_retry = notification_deliver.retry

    def spy_retry(*args, countdown=None, **kwargs):
        countdowns.append(countdown)
        return original_retry(*args, countdown=countdown, **kwargs)

    monkeypatch.setattr(notification_deliver, "retry", spy_retry)
    for attempt in range(1, MAX_DELIVERY_ATTEMPTS):
        with pytest.raises(Retry):
            notification_deliver.apply(args=[notification.pk], throw=True)
        notification.refresh_from_db()
        assert (notification.attempts, notification.status) == (attempt, Notification.Status.PENDING)
    assert countdowns == [retry_delay(n) for n in range(1, MAX_DELIVERY_ATTEMPTS)]
    assert countdowns == sorted(countdowns) and countdowns[0] == 10
    assert notification_deliver(notification.pk) == Notification.Status.FAILED
    notification.refresh_from_db()
    assert notification.attempts == MAX_DELIVERY_ATTEMPTS
    assert len(slack.posts) == MAX_DELIVERY_ATTEMPTS


@pytest.mark.django_db(transaction=True)
def test_a_notification_held_by_one_worker_is_skipped_by_another(monkeypatch):
    """The claim locks the row with SKIP LOCKED: a second worker moves on instead of waiting."""
    monkeypatch.setattr(notification_deliver, "delay", lambda pk: None)  # this test is the worker
    notification = queue()
    held, release, seen = threading.Event(), threading.Event(), []

    def first_worker():
        with transaction.atomic():
            Notification.objects.select_for_update().get(pk=notification.pk)
            held.set()
            release.wait(10)
        connections.close_all()

    thread = threading.Thread(target=first_worker)
    thread.start()
    held.wait(10)
    seen.append(notification_claim(notification.pk))
    release.set()
    thread.join(10)
    assert seen == [None]
    assert notification_claim(notification.pk).status == Notification.Status.SENDING


@pytest.mark.django_db
def test_an_unexpected_error_fails_the_message_instead_of_leaving_it_sending(monkeypatch):
    def broken(**kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(notify, "deliver", broken)
    notification = queue()
    with pytest.raises(TypeError):
        notification_deliver(notification.pk)
    notification.refresh_from_db()
    assert notification.status == Notification.Status.FAILED
    assert notification.last_error == "TypeError: a bug"


@pytest.mark.django_db
def test_reclaim_sends_again_what_a_dead_worker_held(monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr(notification_deliver, "delay", queued.append)
    notification = queue()
    assert notification_claim(notification.pk).status == Notification.Status.SENDING
    assert notifications_reclaim() == []  # the worker may still be sending

    clock.shift(NOTIFICATION_CLAIM_TIMEOUT + timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert notifications_reclaim() == [notification.pk]
    notification.refresh_from_db()
    assert notification.status == Notification.Status.PENDING
    assert queued == [notification.pk]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            smtplib.SMTPRecipientsRefused({"x@example.com": (550, b"no such user")}),
            Notification.Status.FAILED,
        ),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), Notification.Status.FAILED),
        (smtplib.SMTPServerDisconnected("gone"), Notification.Status.PENDING),
        (ConnectionRefusedError(111, "refused"), Notification.Status.PENDING),
    ],
)
def test_mail_errors_are_told_apart_permanent_from_temporary(settings, monkeypatch, error, expected):
    settings.NOTIFY_EMAIL_ENABLED = True

    def send_mail(*args, **kwargs):
        raise error

    monkeypatch.setattr(channels, "send_mail", send_mail)
    notification = queue("email", "x@example.com")
    with contextlib.suppress(Retry):
        notification_deliver.apply(args=[notification.pk], throw=True)
    notification.refresh_from_db()
    assert notification.status == expected


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
