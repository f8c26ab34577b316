"""The application's database role, as production runs it (README, Security): it reads and writes
the tables it needs but cannot cut the audit trail, not even with the trigger's help switched off.
bin/test-services creates the role greenlight_app; the tables belong to the tests' role."""

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from portal.services import audit_record

APP_ROLE = "greenlight_app"


@pytest.fixture
def as_app(transactional_db):
    """A connection to the test database as the application's role, after database_roles."""
    with transaction.atomic():
        audit_record(actor=None, action="thing.do", object_type="demo.thing", object_id="1")
    call_command("database_roles", "--app-role", APP_ROLE)
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        dbname=settings["NAME"],
        user=APP_ROLE,
        password=f"{settings['PASSWORD']}_app",
        autocommit=True,
    ) as app:
        yield app


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE portal_auditevent SET actor_name = 'someone else'",
        "DELETE FROM portal_auditevent",
        "TRUNCATE portal_auditevent",
        "ALTER TABLE portal_auditevent DISABLE TRIGGER portal_auditevent_append_only",
        "DROP TRIGGER portal_auditevent_append_only ON portal_auditevent",
        "DROP TABLE portal_auditevent",
        "CREATE TABLE sneaky (id int)",
    ],
)
def test_the_application_role_cannot_cut_the_audit_trail(as_app, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_app.execute(statement)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), min(actor_name) FROM portal_auditevent")
        assert cursor.fetchone() == (1, "Greenlight")


def test_the_application_role_reads_appends_and_works_other_tables(as_app):
    assert as_app.execute("SELECT count(*) FROM portal_auditevent").fetchone() == (1,)
    with as_app.transaction():
        as_app.execute("SELECT pg_advisory_xact_lock(1)")
        as_app.execute(
            "INSERT INTO portal_notification (channel, recipient, subject, body, status, attempts, "
            "last_error, created_at, request_id) VALUES ('email', 'a@example.com', 's', 'b', 'pending', "
            "0, '', now(), '')"
        )
        as_app.execute("UPDATE portal_notification SET status = 'sent'")
        as_app.execute("DELETE FROM portal_notification")


def test_truncate_is_refused_even_to_a_role_granted_it(as_app):
    """A role given TRUNCATE by mistake (or a superuser) still meets the trigger; only the table's
    owner, who runs the migrations, empties it."""
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT TRUNCATE ON portal_auditevent TO {APP_ROLE}")
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="TRUNCATE refused"):
            as_app.execute("TRUNCATE portal_auditevent")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"REVOKE TRUNCATE ON portal_auditevent FROM {APP_ROLE}")


@pytest.mark.django_db
def test_database_roles_refuses_the_owner_itself():
    with pytest.raises(CommandError, match="the tables' owner"):
        call_command("database_roles", "--app-role", connection.settings_dict["USER"])


@pytest.mark.django_db
def test_database_roles_refuses_a_missing_role_without_a_password():
    with pytest.raises(CommandError, match="There is no role nobody_here"):
        call_command("database_roles", "--app-role", "nobody_here")


@pytest.mark.django_db
def test_check_deploy_names_an_application_that_owns_the_audit_table(settings):
    """The tests connect as the tables' owner, as a wrongly configured production would."""
    from django.core.checks import run_checks

    settings.DEMO = False
    found = {message.id: message.msg for message in run_checks(include_deployment_checks=True)}
    assert "the owner of the audit table" in found["greenlight.W011"]
    assert "AUDIT_ANCHOR_BUCKET is unset" in found["greenlight.W010"]
    settings.AUDIT_ANCHOR_BUCKET = "greenlight-audit-anchors"
    found = {message.id for message in run_checks(include_deployment_checks=True)}
    assert "greenlight.W010" not in found
