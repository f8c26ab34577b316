"""Acts on an incident and writes that point at it, at the same time, on PostgreSQL: neither waits
for the other forever (found by fuzzing the API with concurrent requests: a deadlock, a 500)."""

import threading

import pytest
from django.db import connection, connections, transaction

from incidents import services
from incidents.models import TimelineEntry
from portal import clock
from portal.services import audit_record

pytestmark = pytest.mark.django_db(transaction=True)


def waiting_for_the_audit_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0] > 0


def test_joining_an_incident_while_another_writer_holding_the_audit_lock_adds_to_its_timeline(developer, sre):
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P2")
    audit_held, errors = threading.Event(), []

    def writer():
        """Audits first, then adds a row that points at the incident, in one transaction."""
        try:
            with transaction.atomic():
                audit_record(actor=None, action="thing.first", object_type="demo", object_id="1")
                audit_held.set()
                for _ in range(200):  # until the join below waits for the audit lock
                    if waiting_for_the_audit_lock():
                        break
                    threading.Event().wait(0.02)
                TimelineEntry.objects.create(
                    incident=incident, kind=TimelineEntry.Kind.NOTE, text="From elsewhere", at=clock.now()
                )
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    def joiner():
        try:
            audit_held.wait(timeout=10)
            services.incident_join(actor=sre, incident=incident)  # locks the incident, then audits
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer), threading.Thread(target=joiner)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    incident.refresh_from_db()
    assert sre in incident.responders.all()
    assert incident.timeline.filter(text="From elsewhere").exists()
