"""The incidents API: declare (201, or 400 naming what to fix, writing nothing), list newest first
with filters, one incident with its timeline, its steps (409 out of order), notes; query counts flat."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import services
from incidents.models import Incident
from tests.conftest import client_for
from tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db


def test_a_developer_declares_an_incident_and_an_sre_runs_it(developer, sre):
    ServiceFactory(name="web")
    declared = client_for(developer).post(
        "/api/v1/incidents/",
        {"title": "Checkout fails", "severity": "P1", "services": ["web"]},
        format="json",
    )
    assert declared.status_code == 201, declared.json()
    body = declared.json()
    assert (body["number"], body["status"], body["services"], body["declared_by"]) == (
        f"INC-{body['id']:06d}",
        "triggered",
        ["web"],
        developer.username,
    )
    url = f"/api/v1/incidents/{body['id']}/"

    assert client_for(developer).post(url + "acknowledge/", {}, format="json").status_code == 403
    acknowledged = client_for(sre).post(url + "acknowledge/", {}, format="json").json()
    assert acknowledged["status"] == "acknowledged" and acknowledged["commander"] == sre.username
    note = client_for(developer).post(url + "timeline/", {"text": "Only EU customers."}, format="json")
    assert note.status_code == 201 and note.json()["kind"] == "note"
    resolved = client_for(sre).post(url + "resolve/", {"note": "Rolled back"}, format="json").json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"]
    kinds = ["declared", "page", "status", "page", "note", "status", "page", "link"]
    assert [e["kind"] for e in resolved["timeline"]] == kinds

    again = client_for(sre).post(url + "resolve/", {}, format="json")
    assert again.status_code == 409 and "is resolved: it cannot be resolved now" in again.json()["detail"]
    late = client_for(sre).post(url + "acknowledge/", {}, format="json")
    assert late.status_code == 409 and "cannot be acknowledged now" in late.json()["detail"]
    timeline = client_for(developer).get(url + "timeline/").json()
    assert [e["kind"] for e in timeline] == kinds


@pytest.mark.parametrize(
    "body, field",
    [
        ({"severity": "P1"}, "title"),
        ({"title": "Down", "severity": "P9"}, "severity"),
        ({"title": "Down", "severity": "P1", "services": ["nowhere"]}, "services"),
        ({"title": "  ", "severity": "P1"}, "title"),
    ],
)
def test_a_malformed_declaration_is_a_400_and_writes_nothing(developer, body, field):
    response = client_for(developer).post("/api/v1/incidents/", body, format="json")
    assert response.status_code == 400
    assert field in str(response.json())
    assert not Incident.objects.exists()


def test_an_auditor_reads_incidents_but_declares_none(auditor, developer):
    services.incident_declare(actor=developer, title="Slow pages", severity="P2")
    assert client_for(auditor).get("/api/v1/incidents/").status_code == 200
    refused = client_for(auditor).post("/api/v1/incidents/", {"title": "x", "severity": "P3"}, format="json")
    assert refused.status_code == 403 and not Incident.objects.filter(title="x").exists()


def test_the_list_is_newest_first_filtered_and_flat_in_queries(developer, sre):
    client = client_for(sre)

    def listed(query=""):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api/v1/incidents/{query}")
        assert response.status_code == 200
        return response.json()["results"], len(queries)

    listed()  # the person's capacities and authenticator are cached from the first request on
    for n in range(3):
        services.incident_declare(
            actor=developer, title=f"Trouble {n}", severity="P2", services=[ServiceFactory()]
        )
    _, few = listed()
    for n in range(3, 20):
        incident = services.incident_declare(
            actor=developer, title=f"Trouble {n}", severity="P1", services=[ServiceFactory()]
        )
        services.incident_note(actor=developer, incident=incident, text="more")
    rows, many = listed()
    assert [r["title"] for r in rows][:2] == ["Trouble 19", "Trouble 18"]
    assert many == few
    p1, _ = listed("?severity=P1")
    assert len(p1) == 17 and {r["severity"] for r in p1} == {"P1"}


def test_an_unknown_incident_is_a_json_404(sre):
    response = client_for(sre).get("/api/v1/incidents/999/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_the_api_joins_the_response_and_takes_command(developer, sre):
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    joined = client_for(developer).post(f"/api/v1/incidents/{incident.pk}/join/")
    assert joined.status_code == 200 and joined.json()["responders"] == [developer.username]
    assert client_for(developer).post(f"/api/v1/incidents/{incident.pk}/command/").status_code == 403
    taken = client_for(sre).post(f"/api/v1/incidents/{incident.pk}/command/")
    assert taken.status_code == 200 and taken.json()["commander"] == sre.username
    assert sorted(taken.json()["responders"]) == sorted([developer.username, sre.username])


@pytest.mark.parametrize("query", ["status=%00", "status=open", "severity=P9"])
def test_a_filter_the_list_does_not_know_is_a_400(developer, query):
    response = client_for(developer).get(f"/api/v1/incidents/?{query}")
    assert response.status_code == 400 and query.split("=")[0] in response.json()["errors"]


def test_only_an_sre_puts_an_incident_on_the_status_page_through_the_api(developer, sre):
    declared = client_for(developer).post(
        "/api/v1/incidents/", {"title": "Checkout fails", "severity": "P1", "public": True}, format="json"
    )
    assert declared.status_code == 403 and "an SRE publishes it" in declared.json()["detail"]
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    url = f"/api/v1/incidents/{incident.pk}/publish/"
    assert client_for(developer).post(url, {"public": True}, format="json").status_code == 403
    assert client_for(sre).post(url, {"public": "maybe"}, format="json").status_code == 400
    untitled = client_for(sre).post(url, {"public": True}, format="json")
    assert untitled.status_code == 400 and "give the title the status page shows" in untitled.json()["detail"]
    published = client_for(sre).post(url, {"public": True, "public_title": "Checkout is down"}, format="json")
    assert published.status_code == 200 and published.json()["public"] is True
    assert published.json()["public_title"] == "Checkout is down"
