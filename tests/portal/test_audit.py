import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import (
    IntegrityError,
    InternalError,
    ProgrammingError,
    connection,
    connections,
    transaction,
)

from portal import chain, context
from portal.models import AuditEvent, AuditImmutableError
from portal.selectors import audit_chain_verify
from portal.services import GENESIS_HASH, AuditOutsideTransactionError, audit_record
from tests.factories import UserFactory


def record(actor=None, action="thing.do", **fields) -> AuditEvent:
    with transaction.atomic():
        return audit_record(actor=actor, action=action, object_type="demo.thing", object_id="7", **fields)


def tamper(sql: str, params: list) -> None:
    """What a person with direct database access could do: switch the guard off and edit."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE portal_auditevent DISABLE TRIGGER portal_auditevent_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE portal_auditevent ENABLE TRIGGER portal_auditevent_append_only")


@pytest.mark.django_db
def test_audit_record_chains_events_from_genesis():
    actor = UserFactory(first_name="Ada", last_name="Lovelace", username="ada")
    first = record(actor, before={"status": "draft"}, after={"status": "submitted"})
    second = record(None, action="thing.finish")

    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert first.actor_id == actor.pk and first.actor_name == "Ada Lovelace (ada)"
    assert second.actor_id is None and second.actor_name == "Greenlight"
    stored = AuditEvent.objects.get(pk=first.pk)
    assert stored.before == {"status": "draft"} and stored.after == {"status": "submitted"}
    assert stored.compute_hash(chain.keys().current) == stored.hash
    assert stored.key_id == chain.key_id_of(chain.keys().current)
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_audit_record_keeps_request_context():
    with context.bound(
        context.RequestContext(request_id="req-12345678", ip="203.0.113.9", user_agent="curl/8")
    ):
        event = record()
    assert (event.request_id, event.ip, event.user_agent) == (
        "req-12345678",
        "203.0.113.9",
        "curl/8",
    )


@pytest.mark.django_db(transaction=True)
def test_audit_record_refuses_to_run_outside_a_transaction():
    with pytest.raises(AuditOutsideTransactionError):
        audit_record(actor=None, action="thing.do")
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_audit_event_rolls_back_with_the_change_it_records():
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, action="thing.do")
        raise RuntimeError("the change failed")
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_audit_event_update_is_refused_by_postgresql():
    event = record()
    with pytest.raises((InternalError, ProgrammingError), match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE portal_auditevent SET action = 'forged' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "thing.do"


@pytest.mark.django_db
def test_audit_event_delete_is_refused_by_postgresql():
    event = record()
    with pytest.raises((InternalError, ProgrammingError), match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM portal_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_audit_event_orm_update_and_delete_are_refused():
    event = record()
    event.action = "forged"
    with pytest.raises(AuditImmutableError):
        event.save()
    with pytest.raises(AuditImmutableError):
        event.delete()
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "thing.do"


@pytest.mark.django_db
def test_audit_verify_names_an_event_whose_contents_were_edited(capsys):
    events = [record(action=f"thing.step{i}") for i in range(4)]
    tamper(
        "UPDATE portal_auditevent SET after = %s WHERE id = %s",
        ['{"approved": true}', events[2].pk],
    )

    verdict = audit_chain_verify()
    assert not verdict.ok
    assert verdict.first_bad_id == events[2].pk
    assert verdict.checked == 2
    with pytest.raises(CommandError, match=f"broken at event {events[2].pk}: .*altered"):
        call_command("audit", "verify")


@pytest.mark.django_db
def test_audit_verify_catches_a_forged_hash():
    """Recomputing the edited row's own hash, even with the key, does not help: the next event no
    longer follows it."""
    events = [record(action=f"thing.step{i}") for i in range(3)]
    forged = AuditEvent.objects.get(pk=events[1].pk)
    forged.actor_name = "Someone Else"
    forged_hash = forged.compute_hash(chain.keys().current)
    tamper(
        "UPDATE portal_auditevent SET actor_name = %s, hash = %s WHERE id = %s",
        ["Someone Else", forged_hash, events[1].pk],
    )

    verdict = audit_chain_verify()
    assert not verdict.ok
    assert verdict.first_bad_id == events[2].pk
    assert "does not follow" in verdict.problem


@pytest.mark.django_db
def test_audit_verify_catches_a_removed_event():
    events = [record(action=f"thing.step{i}") for i in range(3)]
    tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[1].pk])
    verdict = audit_chain_verify()
    assert (verdict.ok, verdict.first_bad_id) == (False, events[2].pk)


@pytest.mark.django_db
def test_audit_verify_command_reports_an_intact_chain(capsys):
    for _ in range(3):
        record()
    call_command("audit", "verify")
    assert "intact: 3 events checked, no anchor written yet" in capsys.readouterr().out
    call_command("audit", "anchor")
    call_command("audit", "verify")
    assert "matching the anchor of" in capsys.readouterr().out


@pytest.mark.django_db
def test_deleting_a_user_keeps_their_audit_history():
    actor = UserFactory(username="leaver")
    event = record(actor)
    actor.delete()
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.actor_id == event.actor_id and "leaver" in stored.actor_name
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_audit_hash_is_unique_so_a_copied_event_is_refused():
    event = record()
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.bulk_create(
            [AuditEvent(**{f: getattr(event, f) for f in ["prev_hash", "hash", *AuditEvent.HASHED_FIELDS]})]
        )


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_writers_leave_one_valid_chain():
    writers = 50
    barrier = threading.Barrier(writers)
    errors = []

    def write(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            with transaction.atomic():
                audit_record(actor=None, action="thing.concurrent", object_type="demo", object_id=str(n))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert AuditEvent.objects.count() == writers
    assert sorted(int(i) for i in AuditEvent.objects.values_list("object_id", flat=True)) == list(
        range(writers)
    )
    hashes = list(AuditEvent.objects.order_by("id").values_list("prev_hash", "hash"))
    assert all(prev == hashes[i - 1][1] for i, (prev, _) in enumerate(hashes) if i)
    verdict = audit_chain_verify()
    assert verdict.ok and verdict.checked == writers


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [1e16, -0.0, 1.5e300, 1.2345678901234567e19, 0.1, {"nested": [1, 2.5, None, "ü"]}, 10**20],
)
def test_audit_values_hash_the_same_after_postgresql_stores_them(value):
    """jsonb rewrites numbers; the event is hashed over what PostgreSQL gives back."""
    record(after={"value": value})
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_audit_refuses_values_json_cannot_hold():
    with pytest.raises(ValueError):
        record(after={"value": float("nan")})
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("given", "stored"), [("::ffff:10.0.0.1", "10.0.0.1"), ("2001:db8::1", "2001:db8::1")]
)
def test_audit_ip_hashes_the_same_after_postgresql_stores_it(given, stored):
    with context.bound(context.RequestContext(request_id="req-ip-000001", ip=given)):
        event = record()
    assert AuditEvent.objects.get(pk=event.pk).ip == stored
    assert audit_chain_verify().ok


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_audit_chain_continues_from_the_primary_even_inside_replica_reads():
    """A replica may lag: the hash the next event follows is read from the primary, always."""
    from django.test.utils import CaptureQueriesContext

    from portal.routers import REPLICA, replica_reads

    record()
    with CaptureQueriesContext(connections[REPLICA]) as on_replica, replica_reads():
        record()
    assert on_replica.captured_queries == []
    assert audit_chain_verify().ok
