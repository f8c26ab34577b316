"""The OpenAPI schema is a contract: served to people signed in, kept in the repository for
integrators exactly as the server generates it, and saying how to authenticate, what every refusal
looks like, which statuses each operation answers and what the sensitive acts take."""

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, client_for

PUBLIC_COPY = Path(ROOT) / "docs" / "api" / "openapi.yaml"


@pytest.fixture
def schema(developer):
    response = client_for(developer).get("/api/schema/")
    assert response.status_code == 200
    return response


def operation(schema_text: str, path: str, method: str) -> dict:
    return yaml.safe_load(schema_text)["paths"][path][method]


@pytest.mark.django_db
def test_the_schema_and_its_docs_need_a_sign_in(api_client):
    for address in ("/api/schema/", "/api/docs/"):
        response = api_client.get(address)
        assert response.status_code == 401, address
        assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_the_docs_open_for_a_person_signed_in(developer):
    assert client_for(developer).get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_the_public_copy_is_what_the_server_serves(schema):
    served = schema.content.decode()
    assert PUBLIC_COPY.read_text() == served, (
        "docs/api/openapi.yaml differs from the served schema: regenerate it with "
        "`.venv/bin/python manage.py spectacular --file docs/api/openapi.yaml`."
    )


def test_the_public_copy_names_how_to_authenticate_and_what_a_refusal_is():
    document = yaml.safe_load(PUBLIC_COPY.read_text())
    schemes = document["components"]["securitySchemes"]
    assert schemes["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schemes["tokenAuth"]["description"],
    }
    assert "cookieAuth" in schemes
    assert document["components"]["schemas"]["Error"]["required"] == ["detail", "code"]
    me = document["paths"]["/api/v1/me/"]["get"]
    assert me["security"] == [{"tokenAuth": []}, {"cookieAuth": []}]
    assert me["responses"]["401"] == {"$ref": "#/components/responses/Unauthenticated"}
    assert document["components"]["responses"]["Unauthenticated"]["headers"]["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/environments/", "post"),
        ("/api/v1/services/", "post"),
        ("/api/v1/standard-changes/", "post"),
        ("/api/v1/standard-changes/{id}/retire/", "post"),
        ("/api/v1/environments/{name}/deploy-settings/", "put"),
        ("/api/v1/windows/{id}/", "delete"),
        ("/api/v1/freezes/{id}/", "delete"),
        ("/api/v1/users/{id}/capacities/", "delete"),
    ],
)
def test_every_code_protected_act_documents_its_otp_and_its_lockout(path, method):
    document = yaml.safe_load(PUBLIC_COPY.read_text())
    act = document["paths"][path][method]
    body = act["requestBody"]["content"]["application/json"]["schema"]

    def resolved(part: dict) -> dict:
        name = part.get("$ref", "").rsplit("/", 1)[-1]
        return document["components"]["schemas"][name] if name else part

    parts = [resolved(part) for part in body.get("allOf", [body])]
    assert any("otp" in part.get("required", []) for part in parts), body
    assert act["requestBody"]["required"] is True
    assert act["responses"]["429"] == {"$ref": "#/components/responses/LockedOut"}


def test_the_schema_documents_what_the_server_answers():
    document = yaml.safe_load(PUBLIC_COPY.read_text())
    paths = document["paths"]
    unschedule = paths["/api/v1/changes/{id}/schedule/"]["delete"]["responses"]
    assert "200" in unschedule and "204" not in unschedule
    refused = document["components"]["schemas"]["ScheduleRefused"]
    assert "next_slot" not in refused["required"]
    assert paths["/api/v1/webhooks/github/"]["post"]["responses"]["503"]
    assert "202" not in paths["/api/v1/incidents/"]["post"]["description"]
    for path, names in {
        "/api/v1/incidents/": {"status", "severity"},
        "/api/v1/deployments/": {"environment", "active"},
        "/api/v1/windows/": {"environment"},
        "/api/v1/freezes/": {"environment"},
        "/api/v1/staging-runs/": {"environment", "commit", "version"},
    }.items():
        documented = {parameter["name"] for parameter in paths[path]["get"].get("parameters", [])}
        assert names <= documented, path
    schemas = document["components"]["schemas"]
    for component, field in [
        ("TimelineEntry", "actor"),
        ("Incident", "commander"),
        ("Incident", "change"),
        ("ChecklistItem", "done_by"),
        ("StagingRun", "recorded_by"),
        ("PostMortem", "author"),
    ]:
        assert schemas[component]["properties"][field].get("nullable") is True, (component, field)
    assert schemas["Incident"]["properties"]["change"]["type"] == "integer"
