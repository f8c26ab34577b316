"""A person changes their password (with a code) or resets it by e-mail (security L7); both are
audited, end every other session and the calendar feed's key, and neither skips the second factor."""

import re

import pytest
from django.core import mail
from django.test import Client

from portal.models import AuditEvent, Notification
from tests.conftest import verified_login
from tests.factories import DEFAULT_PASSWORD, otp_code, totp_device

NEW = "a-brand-new-passphrase-42"


def feed_status(client, user) -> int:
    from changes.calendar_views import feed_url
    from tests.factories import EnvironmentFactory

    environment = EnvironmentFactory()
    request = type("R", (), {"user": user, "build_absolute_uri": lambda self, path: path})()
    return client.get(feed_url(request, environment)).status_code


@pytest.mark.django_db
def test_password_change_needs_the_old_password_and_a_code(client, developer):
    device = totp_device(developer)
    verified_login(client, developer)
    form = {"old_password": DEFAULT_PASSWORD, "new_password1": NEW, "new_password2": NEW}

    without_code = client.post("/account/password/", form)
    wrong_old = client.post("/account/password/", {**form, "old_password": "nope", "otp": otp_code(device)})

    assert (without_code.status_code, wrong_old.status_code) == (400, 400)
    developer.refresh_from_db()
    assert developer.check_password(DEFAULT_PASSWORD)
    assert not AuditEvent.objects.filter(action="auth.password_change").exists()


@pytest.mark.django_db
def test_password_change_ends_other_sessions_and_the_calendar_feed(client, developer):
    device = totp_device(developer)
    elsewhere = verified_login(Client(), developer)
    verified_login(client, developer)
    feed_before = feed_status(Client(), developer)

    changed = client.post(
        "/account/password/",
        {
            "old_password": DEFAULT_PASSWORD,
            "new_password1": NEW,
            "new_password2": NEW,
            "otp": otp_code(device),
        },
    )

    assert changed.status_code == 302
    developer.refresh_from_db()
    assert developer.check_password(NEW)
    assert client.get("/").status_code == 200  # this session goes on
    assert elsewhere.get("/")["Location"].startswith("/login/")  # the other one ended
    assert feed_before == 200 and feed_status(Client(), developer) == 200  # a new key works
    event = AuditEvent.objects.get(action="auth.password_change")
    assert (event.actor_id, event.after["how"]) == (developer.pk, "change")
    assert event.after["confirmed_by"].startswith("authenticator app")
    assert NEW not in str(event.after)


@pytest.mark.django_db
def test_password_change_revokes_the_old_calendar_feed_link(client, developer):
    from changes.calendar_views import feed_url
    from tests.factories import EnvironmentFactory

    device = totp_device(developer)
    verified_login(client, developer)
    request = type("R", (), {"user": developer, "build_absolute_uri": lambda self, path: path})()
    old_link = feed_url(request, EnvironmentFactory())
    assert Client().get(old_link).status_code == 200

    client.post(
        "/account/password/",
        {
            "old_password": DEFAULT_PASSWORD,
            "new_password1": NEW,
            "new_password2": NEW,
            "otp": otp_code(device),
        },
    )

    assert Client().get(old_link).status_code in (403, 404)


@pytest.mark.django_db
def test_password_reset_by_email_sets_a_password_but_still_asks_the_code(client, developer, settings):
    settings.NOTIFY_EMAIL_ENABLED = True
    device = totp_device(developer)
    other = verified_login(Client(), developer)

    asked = client.post("/password-reset/", {"email": developer.email})
    unknown = client.post("/password-reset/", {"email": "nobody@example.com"})

    assert asked.status_code == unknown.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [developer.email]
    assert not Notification.objects.exists()  # the link never sits in the outbox's table
    link = re.search(r"https?://[^/]+(/password-reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": NEW, "new_password2": NEW})

    assert done.status_code == 302 and done["Location"] == "/password-reset/done/"
    assert "_auth_user_id" not in client.session  # nobody is signed in by the link
    assert other.get("/")["Location"].startswith("/login/")
    assert client.get(link, follow=True).context["validlink"] is False  # works once
    signed = client.post("/login/", {"username": developer.username, "password": NEW})
    assert signed.status_code == 302 and client.get("/")["Location"].startswith("/login/otp/")
    assert client.post("/login/otp/", {"otp": otp_code(device), "next": "/"}).status_code == 302
    actions = list(
        AuditEvent.objects.filter(action__startswith="auth.password")
        .order_by("id")
        .values_list("action", "actor_id")
    )
    assert actions == [("auth.password_reset_requested", None), ("auth.password_reset", developer.pk)]
