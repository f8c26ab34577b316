"""The incident pages: declare from the list, read the timeline, add a note, run the steps; refusals
are shown on the page (400 or 403), never a 500, and write nothing."""

import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from incidents import services
from incidents.models import Incident
from portal.models import AuditEvent
from tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        from tests.conftest import verified_login

        return verified_login(client, user)

    return sign_in


def test_a_developer_declares_from_the_list_and_lands_on_the_incident(signed_in, developer):
    web = ServiceFactory(name="web")
    client = signed_in(developer)
    response = client.post(
        "/incidents/",
        {"title": "Checkout fails", "severity": "P1", "services": [web.pk], "summary": "EU only"},
    )
    incident = Incident.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/incidents/{incident.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert f"{incident.number} Checkout fails" in page and "EU only" in page
    assert "Paged on PagerDuty." in page and "P1 declared: Checkout fails" in page
    listed = client.get("/incidents/").content.decode()
    assert incident.number in listed and "Declare and page" in listed


def test_a_malformed_declaration_is_a_400_on_the_page(signed_in, developer):
    response = signed_in(developer).post("/incidents/", {"title": "", "severity": "P7"})
    assert response.status_code == 400 and not Incident.objects.exists()
    assert "This field is required." in response.content.decode()


def test_an_sre_acknowledges_and_resolves_and_a_step_out_of_order_is_refused(signed_in, developer, sre):
    incident = services.incident_declare(actor=developer, title="Slow search", severity="P2")
    client = signed_in(sre)
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert ">Acknowledge</button>" in page and ">Resolve</button>" in page
    assert client.post(f"/incidents/{incident.pk}/acknowledge/", {"note": ""}).status_code == 302
    assert client.post(f"/incidents/{incident.pk}/resolve/", {"note": "Index rebuilt"}).status_code == 302
    incident.refresh_from_db()
    assert incident.status == "resolved"
    refused = client.post(f"/incidents/{incident.pk}/acknowledge/", {"note": ""})
    assert refused.status_code == 400 and "cannot be acknowledged now" in refused.content.decode()


def test_a_developer_notes_but_does_not_run_an_incident(signed_in, developer):
    incident = services.incident_declare(actor=developer, title="Slow search", severity="P2")
    client = signed_in(developer)
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Add note" in page and ">Acknowledge</button>" not in page
    assert client.post(f"/incidents/{incident.pk}/note/", {"text": "Started at 14:00"}).status_code == 302
    assert client.post(f"/incidents/{incident.pk}/note/", {"text": ""}).status_code == 400
    assert client.post(f"/incidents/{incident.pk}/acknowledge/", {"note": ""}).status_code == 403
    assert list(incident.timeline.values_list("kind", flat=True)) == ["declared", "page", "note"]


def test_an_overdue_post_mortem_stands_out_on_the_list(signed_in, developer, sre):
    from datetime import timedelta

    from portal import clock

    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    services.incident_resolve(actor=sre, incident=incident)
    clock.shift(timedelta(hours=49))
    listed = signed_in(sre).get("/incidents/").content.decode()
    assert "post-mortem overdue" in listed


def test_an_auditor_reads_incidents_but_declaring_is_refused(signed_in, auditor):
    client = signed_in(auditor)
    assert "Declare and page" not in client.get("/incidents/").content.decode()
    response = client.post("/incidents/", {"title": "Checkout fails", "severity": "P1"})
    assert response.status_code == 403 and not Incident.objects.exists()


def test_the_timeline_says_a_page_is_pending_while_pagerduty_is_down(signed_in, sre, settings, pagerduty):
    from celery.exceptions import Retry

    from portal.models import Notification
    from portal.tasks import notification_deliver

    settings.NOTIFY_PAGERDUTY_ENABLED, settings.PAGERDUTY_ROUTING_KEY = True, "R0UT1NGKEY"
    settings.PAGERDUTY_EVENTS_URL, pagerduty.status = pagerduty.url, 503
    incident = services.incident_declare(actor=sre, title="Checkout fails", severity="P1")
    page = Notification.objects.get(channel="pagerduty")
    client = signed_in(sre)
    pending = r'Paged on PagerDuty\.\s*<span class="badge delivery-pending">pending</span>'
    assert re.search(pending, client.get(f"/incidents/{incident.pk}/").content.decode())
    with pytest.raises(Retry):
        notification_deliver.apply(args=[page.pk], throw=True)
    assert "pending: retrying after 1 attempt" in client.get(f"/incidents/{incident.pk}/").content.decode()
    pagerduty.status = 202
    notification_deliver(page.pk)
    assert "delivered" in client.get(f"/incidents/{incident.pk}/").content.decode()


def test_an_sre_posts_a_public_update_that_the_status_page_shows_as_written(signed_in, sre, developer):
    from django.test import Client

    public = services.incident_declare(
        actor=sre, title="Checkout fails", severity="P1", public=True, public_title="Checkout fails"
    )
    internal = services.incident_declare(actor=sre, title="Disk filling", severity="P2")
    assert "Post it on the public status page too" not in (
        signed_in(developer).get(f"/incidents/{public.pk}/").content.decode()
    )
    client = signed_in(sre)
    assert (
        "Post it on the public status page too"
        not in client.get(f"/incidents/{internal.pk}/").content.decode()
    )
    response = client.post(
        f"/incidents/{public.pk}/note/", {"text": "Payments work again for most customers.", "public": "on"}
    )
    assert response.status_code == 302
    client.post(f"/incidents/{public.pk}/note/", {"text": "The disk on db-3 is the cause."})
    entries = list(public.timeline.filter(kind="note").values_list("text", "public"))
    assert entries == [
        ("Payments work again for most customers.", True),
        ("The disk on db-3 is the cause.", False),
    ]

    status_page = Client().get("/status/").content.decode()
    assert "Payments work again for most customers." in status_page and "db-3" not in status_page
    with pytest.raises(ValidationError, match="is not on the status page"):
        services.incident_note(actor=sre, incident=internal, text="Hello", public=True)
    with pytest.raises(PermissionDenied, match="run incidents"):
        services.incident_note(actor=developer, incident=public, text="Hello", public=True)


def test_people_join_the_response_and_an_sre_takes_command(signed_in, sre, developer):
    from tests.factories import UserFactory

    first = UserFactory(username="sky", first_name="Sky", role="sre")
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    services.incident_acknowledge(actor=first, incident=incident)
    incident.refresh_from_db()
    assert incident.commander == first and list(incident.responders.all()) == [first]

    client = signed_in(developer)
    assert "Take command" not in client.get(f"/incidents/{incident.pk}/").content.decode()
    assert client.post(f"/incidents/{incident.pk}/join/").status_code == 302
    assert client.post(f"/incidents/{incident.pk}/join/").status_code == 302  # once is enough
    assert client.post(f"/incidents/{incident.pk}/command/").status_code == 403

    assert signed_in(sre).post(f"/incidents/{incident.pk}/command/").status_code == 302
    incident.refresh_from_db()
    assert incident.commander == sre
    assert set(incident.responders.all()) == {first, developer, sre}
    said = list(incident.timeline.filter(kind="note").values_list("text", flat=True))
    assert said == [
        f"{developer.display_name} joined the response.",
        f"{sre.display_name} took command from {first.display_name}.",
    ]
    actions = [e.action for e in AuditEvent.objects.filter(object_id=str(incident.pk)).order_by("pk")]
    assert actions[-2:] == ["incident.join", "incident.command"]

    services.incident_resolve(actor=sre, incident=incident)
    refused = signed_in(developer).post(f"/incidents/{incident.pk}/join/")
    assert refused.status_code == 400 and "there is no response to join" in refused.content.decode()


def test_an_sre_puts_an_incident_on_the_status_page_and_takes_it_off(
    signed_in, sre, developer, django_capture_on_commit_callbacks
):
    from django.test import Client

    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    page = signed_in(developer).get("/incidents/").content.decode()
    assert "Show it on the public status page" not in page  # for those who run incidents
    assert (
        "Put it on the status page"
        not in signed_in(developer).get(f"/incidents/{incident.pk}/").content.decode()
    )
    assert signed_in(developer).post(f"/incidents/{incident.pk}/publish/").status_code == 403
    assert "Checkout fails" not in Client().get("/status/").content.decode()

    client = signed_in(sre)
    with django_capture_on_commit_callbacks(execute=True):  # the page is told once it commits
        assert (
            client.post(f"/incidents/{incident.pk}/publish/", {"public_title": "Checkout fails"}).status_code
            == 302
        )
    incident.refresh_from_db()
    assert incident.public and "Checkout fails" in Client().get("/status/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/incidents/{incident.pk}/unpublish/").status_code == 302
    incident.refresh_from_db()
    assert not incident.public and "Checkout fails" not in Client().get("/status/").content.decode()
    published = [
        e.after["public"] for e in AuditEvent.objects.filter(action="incident.publish").order_by("pk")
    ]
    assert published == [True, False]


def test_a_step_there_is_not_is_a_404(signed_in, sre):
    incident = services.incident_declare(actor=sre, title="Checkout fails", severity="P1")
    assert signed_in(sre).post(f"/incidents/{incident.pk}/explode/").status_code == 404


def test_those_who_only_read_may_not_join_the_response(signed_in, sre, auditor):
    incident = services.incident_declare(actor=sre, title="Checkout fails", severity="P1")
    assert signed_in(auditor).post(f"/incidents/{incident.pk}/join/").status_code == 403
    assert not incident.responders.exists()
