import pytest
from django.db import router

from portal.models import AuditEvent
from portal.routers import REPLICA, replica_reads


def test_reads_go_to_the_primary_unless_marked_replica_safe():
    assert router.db_for_read(AuditEvent) == "default"
    with replica_reads():
        assert router.db_for_read(AuditEvent) == REPLICA
    assert router.db_for_read(AuditEvent) == "default"


def test_writes_always_go_to_the_primary():
    with replica_reads():
        assert router.db_for_write(AuditEvent) == "default"


def test_migrations_run_only_on_the_primary():
    assert router.allow_migrate("default", "portal")
    assert not router.allow_migrate(REPLICA, "portal")


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_without_a_replica_every_read_goes_to_the_primary(settings):
    databases = dict(settings.DATABASES)
    databases.pop(REPLICA)
    settings.DATABASES = databases
    with replica_reads():
        assert router.db_for_read(AuditEvent) == "default"


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_replica_safe_query_runs_on_the_replica_connection():
    assert AuditEvent.objects.all().db == "default"
    with replica_reads():
        assert AuditEvent.objects.all().db == REPLICA
