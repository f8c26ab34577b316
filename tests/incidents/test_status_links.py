"""The status page's e-mailed links: a confirmation link works once and for 48 hours after it was
sent; an unsubscribe link works once; each refusal says why, and changes nothing."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache

from incidents import status, status_subscriptions
from incidents.models import StatusSubscriber
from portal import clock
from portal.models import AuditEvent, Notification

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_kept_page():
    cache.delete(status.CACHE_KEY)
    yield
    cache.delete(status.CACHE_KEY)


def confirm_link(email: str) -> str:
    """The path of the newest confirmation link sent to `email`."""
    body = Notification.objects.filter(recipient=email).order_by("-id").first().body
    return re.search(r"(/status/confirm/[^/\s]+/)", body)[1]


def test_a_confirmation_link_works_once(client):
    client.post("/status/subscribe/", {"email": "reader@example.com"})
    link = confirm_link("reader@example.com")
    assert "You are subscribed" in client.post(link).content.decode()
    for method in (client.get, client.post):
        again = method(link)
        assert again.status_code == 410
        assert "It has been used already: each link works once." in again.content.decode()
    assert AuditEvent.objects.filter(action="status_subscriber.confirm").count() == 1
    subscriber = StatusSubscriber.objects.get()
    assert subscriber.confirmed_at is not None
    assert subscriber.token not in link  # the unsubscribe link is another


def test_a_confirmation_link_expires_after_48_hours(client):
    client.post("/status/subscribe/", {"email": "reader@example.com"})
    link = confirm_link("reader@example.com")
    clock.shift(timedelta(hours=48, minutes=1))
    for method in (client.get, client.post):
        expired = method(link)
        assert expired.status_code == 410 and "It has expired" in expired.content.decode()
    assert StatusSubscriber.objects.get().confirmed_at is None
    assert not AuditEvent.objects.filter(action="status_subscriber.confirm").exists()
    # Subscribing again sends a new link, which works.
    client.post("/status/subscribe/", {"email": "reader@example.com"})
    fresh = confirm_link("reader@example.com")
    assert fresh != link and "You are subscribed" in client.post(fresh).content.decode()


def test_a_confirmation_link_whose_time_was_changed_is_not_valid(client):
    client.post("/status/subscribe/", {"email": "reader@example.com"})
    link = confirm_link("reader@example.com")
    token, issued, signature = link.split("/")[3].rsplit(".", 2)
    clock.shift(timedelta(hours=49))
    forged = f"/status/confirm/{token}.{int(clock.now().timestamp())}.{signature}/"
    response = client.post(forged)
    assert response.status_code == 404 and "This link is not valid" in response.content.decode()
    assert StatusSubscriber.objects.get().confirmed_at is None


def test_an_unsubscribe_link_works_once_and_only_for_a_confirmed_subscription(client):
    client.post("/status/subscribe/", {"email": "reader@example.com"})
    pending = StatusSubscriber.objects.get()
    # The token a confirmation link carries does not end a subscription.
    assert client.post(f"/status/unsubscribe/{pending.token}/").status_code == 404
    assert StatusSubscriber.objects.exists()
    client.post(confirm_link("reader@example.com"))
    farewell = unsubscribe_link()
    assert "You are unsubscribed" in client.post(farewell).content.decode()
    again = client.post(farewell)
    assert again.status_code == 404 and "the subscription it belonged to has ended" in again.content.decode()
    assert AuditEvent.objects.filter(action="status_subscriber.unsubscribe").count() == 1


def test_the_service_refuses_a_used_link_in_words():
    subscriber = StatusSubscriber.objects.create(
        email="r@example.com", token="x" * 43, created_at=clock.now()
    )
    token = status_subscriptions.confirm_token(subscriber)
    status_subscriptions.status_subscription_confirm(token=token)
    with pytest.raises(status_subscriptions.LinkRefused, match="used already") as refused:
        status_subscriptions.status_subscription_confirm(token=token)
    assert refused.value.status == 410


def unsubscribe_link() -> str:
    """The unsubscribe link an update e-mail carries, as the service writes it."""
    subscriber = StatusSubscriber.objects.get(confirmed_at__isnull=False)
    return f"/status/unsubscribe/{status_subscriptions.unsubscribe_token(subscriber)}/"


def test_an_unsubscribe_link_expires_and_its_bare_token_never_worked(client):
    client.post("/status/subscribe/", {"email": "reader@example.com"})
    client.post(confirm_link("reader@example.com"))
    subscriber = StatusSubscriber.objects.get()
    assert client.post(f"/status/unsubscribe/{subscriber.token}/").status_code == 404
    farewell = unsubscribe_link()
    clock.shift(status_subscriptions.UNSUBSCRIBE_VALID_FOR + timedelta(minutes=1))
    expired = client.post(farewell)
    assert expired.status_code == 410 and "Use the link in the latest e-mail" in expired.content.decode()
    assert StatusSubscriber.objects.filter(pk=subscriber.pk).exists()
    assert "You are unsubscribed" in client.post(unsubscribe_link()).content.decode()
