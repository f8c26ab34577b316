import pytest

from tests.conftest import verified_login
from tests.factories import EnvironmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    production = EnvironmentFactory(aws_account="Production account", database="Production RDS")
    ServiceFactory(name="render-api", environments=[production])
    return production


def test_catalogue_shows_environments_with_policy_and_services(client, developer, catalogue):
    verified_login(client, developer)
    body = client.get("/environments/").content.decode()
    assert "Production" in body and "3 approvals, 1 code owner" in body and "render-api" in body
    # A developer reads environments, not their deployment settings.
    assert "Production RDS" not in body


def test_catalogue_shows_deployment_details_to_those_who_read_settings(client, devops, catalogue):
    verified_login(client, devops)
    body = client.get("/environments/").content.decode()
    assert "Production account" in body and "Production RDS" in body


def test_environment_api_adds_with_a_code_and_audits(policy_admin, catalogue):
    from portal.models import AuditEvent
    from tests.conftest import client_for
    from tests.factories import otp_code, totp_device

    api = client_for(policy_admin)
    body = {
        "name": "staging",
        "display_name": "Staging",
        "branch": "staging",
        "approval_policy": "Production process",
    }
    assert api.post("/api/v1/environments/", body, format="json").status_code == 403  # no code
    response = api.post(
        "/api/v1/environments/", {**body, "otp": otp_code(totp_device(policy_admin))}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert AuditEvent.objects.filter(action="environment.create").count() == 1
    names = [e["name"] for e in api.get("/api/v1/environments/").json()]
    assert names == ["production", "staging"]


def test_service_api_adds_with_a_code_and_audits(policy_admin, catalogue):
    from portal.models import AuditEvent
    from tests.conftest import client_for
    from tests.factories import otp_code, totp_device

    body = {
        "name": "billing",
        "team": "Money",
        "repository": "acme/billing",
        "environments": ["production"],
        "code_owners": ["octocat"],
        "on_status_page": True,
        "otp": otp_code(totp_device(policy_admin)),
    }
    api = client_for(policy_admin)
    response = api.post("/api/v1/services/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["environments"] == ["production"] and response.json()["on_status_page"] is True
    created = AuditEvent.objects.get(action="service.create").after
    assert created["environments"] == ["production"] and created["on_status_page"] == "True"
    listed = {s["name"]: s["on_status_page"] for s in api.get("/api/v1/services/").json()}
    assert listed == {"billing": True, "render-api": False}  # internal unless marked


NEW_ENVIRONMENT = {
    "name": "qa",
    "display_name": "QA",
    "branch": "qa",
    "approval_policy": "Production process",
}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/environments/", {**NEW_ENVIRONMENT, "name": "Bad Name"}, "name"),
        ("/api/v1/environments/", {**NEW_ENVIRONMENT, "time_zone": "Mars/Base"}, "time_zone"),
        (
            "/api/v1/services/",
            {"name": "x", "team": "t", "repository": "r", "environments": ["nowhere"]},
            "environments",
        ),
        (
            "/api/v1/services/",
            {"name": "y", "team": "t", "repository": "r", "code_owners": ["not a login!"]},
            "code_owners",
        ),
    ],
)
def test_catalogue_refuses_bad_input_and_writes_nothing(policy_admin, catalogue, path, body, field):
    from portal.models import AuditEvent
    from tests.conftest import client_for
    from tests.factories import otp_code, totp_device

    response = client_for(policy_admin).post(
        path, {**body, "otp": otp_code(totp_device(policy_admin))}, format="json"
    )
    assert response.status_code == 400 and field in response.json()["errors"]
    assert not AuditEvent.objects.filter(action__endswith=".create").exists()


def test_catalogue_writes_need_the_policy_right(developer, catalogue):
    from tests.conftest import client_for

    response = client_for(developer).post("/api/v1/services/", {"name": "z"}, format="json")
    assert response.status_code == 403 and "environment.manage" in response.json()["detail"]
