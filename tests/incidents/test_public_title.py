"""An incident goes on the public status page under a public title someone wrote for customers:
its own title (the portal's "CHG-000005 rolled back by itself in Production") stays internal, on
the page and in the subscribers' e-mails. Publishing without one is refused in words, and writes
nothing."""

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client

from incidents import services, status
from incidents.models import Incident, StatusSubscriber
from portal import clock
from portal.models import AuditEvent, Notification
from tests.conftest import client_for, verified_login
from tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db

INTERNAL = "CHG-000005 rolled back by itself in Production"


@pytest.fixture(autouse=True)
def _no_kept_page():
    cache.delete(status.CACHE_KEY)
    yield
    cache.delete(status.CACHE_KEY)


@pytest.fixture
def rolled_back():
    """The P1 the portal opens when a deployment rolls back by itself."""
    checkout = ServiceFactory(name="checkout", on_status_page=True)
    with transaction.atomic():
        return services.incident_declare(
            actor=None,
            title=INTERNAL,
            severity="P1",
            services=[checkout],
            source=Incident.Source.DEPLOYMENT,
        )


def test_publishing_without_a_public_title_is_refused_in_words(rolled_back, sre):
    url = f"/api/v1/incidents/{rolled_back.pk}/publish/"
    for body in ({"public": True}, {"public": True, "public_title": "   "}):
        response = client_for(sre).post(url, body, format="json")
        assert response.status_code == 400
        assert "give the title the status page shows" in response.json()["detail"]
    page = verified_login(Client(), sre).post(f"/incidents/{rolled_back.pk}/publish/", {"public_title": ""})
    assert page.status_code == 400
    assert "Give the title the status page shows, in words for customers." in page.content.decode()
    rolled_back.refresh_from_db()
    assert not rolled_back.public and rolled_back.public_title == ""
    assert not AuditEvent.objects.filter(action="incident.publish").exists()
    declared = client_for(sre).post(
        "/api/v1/incidents/", {"title": "Checkout fails", "severity": "P1", "public": True}, format="json"
    )
    assert declared.status_code == 400 and "public_title" in declared.json()["detail"]
    assert Incident.objects.count() == 1


def test_the_status_page_and_its_e_mails_show_only_the_public_title(
    rolled_back, sre, monkeypatch, django_capture_on_commit_callbacks
):
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)  # the worker's part, run here
    subscriber = StatusSubscriber.objects.create(
        email="reader@example.com", token="t" * 43, created_at=clock.now(), confirmed_at=clock.now()
    )
    client = verified_login(Client(), sre)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/incidents/{rolled_back.pk}/publish/",
            {"public_title": "Checkout is failing for some customers"},
        )
    assert response.status_code == 302
    rolled_back.refresh_from_db()
    assert rolled_back.public and rolled_back.public_title == "Checkout is failing for some customers"
    event = AuditEvent.objects.get(action="incident.publish")
    assert event.after == {"public": True, "public_title": "Checkout is failing for some customers"}

    page = Client().get("/status/").content.decode()
    assert "Checkout is failing for some customers" in page
    assert "CHG-" not in page and "rolled back" not in page
    mails = Notification.objects.filter(recipient=subscriber.email)
    assert mails.exists()
    for mail in mails:
        assert "CHG-" not in mail.subject + mail.body and "Checkout is failing" in mail.subject


def test_a_new_public_title_replaces_the_old_one(rolled_back, sre):
    url = f"/api/v1/incidents/{rolled_back.pk}/publish/"
    first = client_for(sre).post(url, {"public": True, "public_title": "Checkout is slow"}, format="json")
    assert first.status_code == 200 and first.json()["public_title"] == "Checkout is slow"
    again = client_for(sre).post(url, {"public": True, "public_title": "Checkout is down"}, format="json")
    assert again.status_code == 200 and again.json()["public_title"] == "Checkout is down"
    kept = client_for(sre).post(url, {"public": True}, format="json")  # the one given before stays
    assert kept.status_code == 200 and kept.json()["public_title"] == "Checkout is down"
    page = Client().get("/status/").content.decode()
    assert "Checkout is down" in page and "Checkout is slow" not in page and "CHG-" not in page
    titles = [
        e.after["public_title"] for e in AuditEvent.objects.filter(action="incident.publish").order_by("id")
    ]
    assert titles == ["Checkout is slow", "Checkout is down"]
