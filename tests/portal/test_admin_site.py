"""The Django admin (security L8): nobody outside break-glass; inside it an administrator reads
everything and writes only what an audited service saves (deploy settings). Its sign-in is the
portal's own."""

import json
from datetime import timedelta

import pytest
from django import forms

from deployments.models import DeploySettings
from portal import clock
from portal.models import AuditEvent, BreakGlassSession
from portal.roles import admin_may
from tests.conftest import verified_login
from tests.factories import EnvironmentFactory

ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012"


def open_break_glass(user) -> BreakGlassSession:
    now = clock.now()
    return BreakGlassSession.objects.create(
        user=user, reason="Primary database is down", opened_at=now, expires_at=now + timedelta(hours=1)
    )


@pytest.fixture
def settings_row(db):
    return DeploySettings.objects.create(
        environment=EnvironmentFactory(),
        listener_arn=f"{ARN}:listener/app/shop/0123456789abcdef/0123456789abcdef",
        blue_target_group_arn=f"{ARN}:targetgroup/blue/0123456789abcdef",
        green_target_group_arn=f"{ARN}:targetgroup/green/0123456789abcdef",
        deployer=DeploySettings.Deployer.SIMULATED,
    )


def admin_form_data(response, **changes) -> dict:
    """What the admin's change form posts back as it was shown, with `changes`."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        if isinstance(field, forms.JSONField):
            data[name] = json.dumps(form.initial.get(name))
            continue
        value = field.prepare_value(form[name].value())
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else value
    return {**data, **changes}


@pytest.mark.django_db
def test_admin_is_closed_outside_break_glass(client, admin, policy_admin, settings_row):
    verified_login(client, admin)

    index = client.get("/admin/")
    page = client.get(f"/admin/deployments/deploysettings/{settings_row.pk}/change/")

    assert index.status_code == 200 and "permission to view or edit anything" in index.content.decode()
    assert page.status_code == 403
    assert not admin_may(policy_admin, "deployments.view_deploysettings")
    assert verified_login(client, policy_admin).get("/admin/").status_code == 302  # not staff


@pytest.mark.django_db
def test_admin_inside_break_glass_reads_and_writes_deploy_settings_audited(client, admin, settings_row):
    session = open_break_glass(admin)
    verified_login(client, admin)
    url = f"/admin/deployments/deploysettings/{settings_row.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200

    saved = client.post(url, admin_form_data(page, bake_seconds=420))

    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else saved
    settings_row.refresh_from_db()
    assert settings_row.bake_seconds == 420
    event = AuditEvent.objects.get(action="environment.deploy_settings")
    assert (event.actor_id, event.break_glass_session_id) == (admin.pk, session.pk)
    assert str(event.after["bake_seconds"]) == "420"


@pytest.mark.django_db
def test_admin_inside_break_glass_cannot_write_unaudited(client, admin, developer):
    open_break_glass(admin)
    verified_login(client, admin)

    users = client.get("/admin/portal/user/")
    person = client.post(f"/admin/portal/user/{developer.pk}/change/", {"username": "dev", "role": "admin"})
    delete = client.post(f"/admin/portal/user/{developer.pk}/delete/", {"post": "yes"})

    assert users.status_code == 200 and "dev" in users.content.decode()
    assert person.status_code == 403 and delete.status_code == 403
    developer.refresh_from_db()
    assert developer.role == "developer"
    for perm in ("axes.delete_accessattempt", "otp_totp.add_totpdevice", "portal.change_user"):
        assert not admin.has_perm(perm)


@pytest.mark.django_db
def test_admin_signs_in_through_the_portal(client):
    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fadmin%2F"
    assert (
        client.post("/admin/login/", {"username": "admin", "password": "x", "otp_token": "1"}).status_code
        == 302
    )
