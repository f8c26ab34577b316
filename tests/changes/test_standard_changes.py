"""Standard changes: pre-approved templates kept by policy administrators; a change filed from one
takes what it leaves out from the template and needs only the approvals the template names."""

import pytest
from django.db import transaction

from changes import services
from changes.models import ChangeRequest, StandardChangeTemplate
from portal.models import AuditEvent
from tests.conftest import client_for
from tests.factories import EnvironmentFactory, ServiceFactory, UserFactory, otp_code, totp_device

pytestmark = pytest.mark.django_db

TEMPLATE = {
    "name": "Renew a TLS certificate",
    "description": "Replaces the certificate on the load balancer before it expires.",
    "rollback_plan": "Put the previous certificate back on the listener.",
    "risk": "low",
    "environment": "production",
    "services": ["web"],
    "min_approvals": 1,
    "min_code_owner_approvals": 0,
    "required_sign_offs": [],
}


@pytest.fixture
def catalogue(db):
    EnvironmentFactory()
    ServiceFactory(name="web")


def create_template(person, **overrides):
    body = {**TEMPLATE, **overrides, "otp": otp_code(totp_device(person))}
    return client_for(person).post("/api/v1/standard-changes/", body, format="json")


@pytest.fixture
def template(policy_admin, catalogue) -> StandardChangeTemplate:
    response = create_template(policy_admin)
    assert response.status_code == 201, response.json()
    return StandardChangeTemplate.objects.get(pk=response.json()["id"])


def file(person, **body):
    return client_for(person).post(
        "/api/v1/changes/", {"title": "Renew api.example.com", **body}, format="json"
    )


def test_a_policy_administrator_keeps_templates_with_a_fresh_code(policy_admin, developer, catalogue):
    assert create_template(developer).status_code == 403
    body = {**TEMPLATE}
    assert client_for(policy_admin).post("/api/v1/standard-changes/", body, format="json").status_code == 403
    created = create_template(policy_admin)
    assert created.status_code == 201 and created.json()["min_approvals"] == 1
    event = AuditEvent.objects.get(action="standard_template.create")
    assert event.after["name"] == "Renew a TLS certificate" and event.actor_id == policy_admin.pk
    assert [t["name"] for t in client_for(developer).get("/api/v1/standard-changes/").json()] == [
        TEMPLATE["name"]
    ]


def test_a_change_filed_from_a_template_takes_its_fields_and_needs_only_its_approvals(developer, template):
    response = file(developer, standard_template=template.pk)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["change_type"] == "standard" and body["standard_template"] == template.pk
    assert (
        body["description"] == TEMPLATE["description"] and body["rollback_plan"] == TEMPLATE["rollback_plan"]
    )
    assert body["environment"] == "production" and body["services"] == ["web"] and body["risk"] == "low"
    change = ChangeRequest.objects.get(pk=body["id"])
    with transaction.atomic():
        services.change_submit(actor=developer, change=change)
    submitted = client_for(developer).get(f"/api/v1/changes/{change.pk}/").json()
    assert submitted["quorum"]["explanation"] == "0 of 1 approvals"
    with transaction.atomic():
        services.change_decide(actor=UserFactory(role="qa"), change=change, decision="approve")
    change.refresh_from_db()
    assert change.status == "approved"  # the default policy would want 3 approvals and 3 sign-offs


def test_a_standard_change_without_a_template_is_a_400_naming_it(developer, catalogue):
    response = file(
        developer,
        change_type="standard",
        description="By hand.",
        rollback_plan="Undo.",
        environment="production",
    )
    assert response.status_code == 400 and response.json()["detail"].startswith("standard_template: ")


def test_a_template_change_must_be_standard(developer, template):
    response = file(developer, standard_template=template.pk, change_type="normal")
    assert response.status_code == 400 and response.json()["detail"].startswith("change_type: ")


def test_a_normal_change_still_needs_its_fields(developer, catalogue):
    response = file(developer, environment="production")
    assert response.status_code == 400
    assert (
        response.json()["detail"]
        == "description: This field is required. rollback_plan: This field is required."
    )


def test_a_retired_template_files_no_more_changes(policy_admin, developer, template):
    retire = client_for(policy_admin).post(
        f"/api/v1/standard-changes/{template.pk}/retire/",
        {"otp": otp_code(totp_device(policy_admin))},
        format="json",
    )
    assert retire.status_code == 200 and retire.json()["active"] is False
    response = file(developer, standard_template=template.pk)
    assert response.status_code == 400 and "is retired" in response.json()["detail"]


def test_the_new_change_page_starts_from_a_chosen_template(client, developer, template):
    from tests.conftest import verified_login

    verified_login(client, developer)
    page = client.get("/changes/new/")
    assert f'href="?template={template.pk}"' in page.content.decode()
    form = client.get(f"/changes/new/?template={template.pk}").context["form"]
    assert (
        form.initial["description"] == TEMPLATE["description"] and form.initial["change_type"] == "standard"
    )
    body = {k: v for k, v in form.initial.items() if v is not None}
    body.update(title="Renew www", source_branch="staging", target_branch="main", version_bump="patch")
    response = client.post(f"/changes/new/?template={template.pk}", body)
    assert response.status_code == 302, response.context["form"].errors
    change = ChangeRequest.objects.get(title="Renew www")
    assert change.standard_template == template and change.change_type == "standard"


@pytest.fixture
def staging_template(policy_admin, catalogue) -> StandardChangeTemplate:
    """A staging template's light rules: one approval, no sign-offs."""
    EnvironmentFactory(name="staging", display_name="Staging", branch="staging", is_production=False)
    response = create_template(policy_admin, name="Flip a staging flag", environment="staging")
    assert response.status_code == 201, response.json()
    return StandardChangeTemplate.objects.get(pk=response.json()["id"])


def test_a_staging_template_cannot_carry_a_change_to_production(developer, staging_template):
    """The attack: post the staging template's id with `environment: production`, so one peer's
    approval stands in for production's full policy."""
    before = ChangeRequest.objects.count(), AuditEvent.objects.count()
    response = file(
        developer, standard_template=staging_template.pk, environment="production", source_branch="flag"
    )
    assert response.status_code == 400, response.json()
    assert "pre-approved for Staging only" in response.json()["detail"]
    assert (ChangeRequest.objects.count(), AuditEvent.objects.count()) == before


def test_a_standard_change_cannot_be_moved_to_production_by_an_edit(developer, staging_template):
    filed = file(developer, standard_template=staging_template.pk, source_branch="flag")
    assert filed.status_code == 201, filed.json()
    assert filed.json()["environment"] == "staging"
    events = AuditEvent.objects.count()
    response = client_for(developer).patch(
        f"/api/v1/changes/{filed.json()['id']}/", {"environment": "production"}, format="json"
    )
    assert response.status_code == 400
    change = ChangeRequest.objects.get(pk=filed.json()["id"])
    assert change.environment.name == "staging"
    assert AuditEvent.objects.count() == events


def test_a_standard_change_stays_among_its_templates_services(developer, template):
    ServiceFactory(name="billing")
    response = file(developer, standard_template=template.pk, services=["web", "billing"])
    assert response.status_code == 400
    assert "pre-approved for web, not billing" in response.json()["detail"]
    filed = file(developer, standard_template=template.pk)
    assert filed.status_code == 201, filed.json()
    edit = client_for(developer).patch(
        f"/api/v1/changes/{filed.json()['id']}/", {"services": ["billing"]}, format="json"
    )
    assert edit.status_code == 400
    assert list(ChangeRequest.objects.get(pk=filed.json()["id"]).services.values_list("name", flat=True)) == [
        "web"
    ]


def test_a_template_naming_no_environment_is_not_used_for_production(policy_admin, developer, catalogue):
    made = create_template(policy_admin, name="Anywhere", environment=None)
    assert made.status_code == 201, made.json()
    response = file(developer, standard_template=made.json()["id"], environment="production")
    assert response.status_code == 400
    assert "names no environment" in response.json()["detail"]
    EnvironmentFactory(name="staging", display_name="Staging", branch="staging", is_production=False)
    allowed = file(
        developer, standard_template=made.json()["id"], environment="staging", source_branch="flag"
    )
    assert allowed.status_code == 201, allowed.json()
