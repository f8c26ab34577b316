"""The incident pages: declare from the list, read the timeline, add a note, run the steps; refusals
are shown on the page (400 or 403), never a 500, and write nothing."""

import pytest

from incidents import services
from incidents.models import Incident
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
    assert client.post(f"/incidents/{incident.pk}/explode/", {}).status_code == 403


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
