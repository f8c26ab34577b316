import pytest

from changes.models import ChangeRequest
from tests.conftest import client_for
from tests.factories import EnvironmentFactory, ServiceFactory, UserFactory, otp_code, totp_device


@pytest.mark.django_db
def test_change_goes_from_draft_to_approved_through_the_api(developer):
    EnvironmentFactory()
    ServiceFactory()
    api = client_for(developer)
    response = api.post(
        "/api/v1/changes/",
        {
            "title": "Faster render queue",
            "description": "Moves rendering to the new queue.",
            "rollback_plan": "Switch traffic back to blue.",
            "environment": "production",
            "services": ["web"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    change = response.json()
    assert change["number"].startswith("CHG-") and change["status"] == "draft"
    assert len(change["checklist"]) == 25
    assert api.post(f"/api/v1/changes/{change['id']}/submit/").json()["status"] == "submitted"

    people = [
        UserFactory(username="alex", github_login="alex-owner"),
        UserFactory(username="bo", role="qa"),
        UserFactory(username="casey", role="devops"),
        UserFactory(username="sam", capacities=["security"]),
        UserFactory(username="pat", capacities=["product"]),
        UserFactory(username="lee", capacities=["engineering_lead"]),
    ]
    capacities = ["", "", "", "security", "product", "engineering_lead"]
    for person, capacity in zip(people, capacities, strict=True):
        answer = client_for(person).post(
            f"/api/v1/changes/{change['id']}/approvals/",
            {"decision": "approve", "capacity": capacity, "otp": otp_code(totp_device(person))},
            format="json",
        )
        assert answer.status_code == 201, answer.json()
    assert ChangeRequest.objects.get(pk=change["id"]).status == "approved"
    detail = api.get(f"/api/v1/changes/{change['id']}/").json()
    assert detail["quorum"]["satisfied"] is True
    assert detail["quorum"]["code_owner_approvals"] == 1
