"""The audit chain against someone who holds the application's database credentials: keyed hashes
they cannot recompute, anchors outside the database that name a removed tail or a truncation, and
verification in the background whose verdict the API answers."""

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from django.db import connection, transaction

from portal import chain, services, tasks
from portal.models import AuditEvent, AuditVerdict, Notification
from portal.roles import Role
from portal.selectors import audit_chain_verify
from portal.services import audit_record
from tests.conftest import verified_login
from tests.factories import UserFactory

NEW_KEY = "a-new-audit-key-after-rotation-0123456789"


def record(action="thing.do") -> AuditEvent:
    with transaction.atomic():
        return audit_record(actor=None, action=action, object_type="demo.thing", object_id="7")


def events(count: int) -> list[AuditEvent]:
    return [record(f"thing.step{i}") for i in range(count)]


def tamper(*statements: tuple[str, list]) -> None:
    """What a holder of the table's credentials can do: switch the guard off and write."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE portal_auditevent DISABLE TRIGGER portal_auditevent_append_only")
        for sql, params in statements:
            cursor.execute(sql, params)
        cursor.execute("ALTER TABLE portal_auditevent ENABLE TRIGGER portal_auditevent_append_only")


@pytest.mark.django_db
def test_removing_the_newest_events_is_named_against_the_anchor():
    written = events(5)
    services.audit_anchor_write()
    tamper(("DELETE FROM portal_auditevent WHERE id > %s", [written[2].pk]))

    verdict = audit_chain_verify()

    assert not verdict.ok
    assert verdict.first_bad_id == written[2].pk
    assert f"the trail ends at event {written[2].pk}" in verdict.problem
    assert f"names event {written[4].pk}: the newest events were removed" in verdict.problem


@pytest.mark.django_db
def test_a_truncated_trail_is_named_against_the_anchor():
    written = events(3)
    services.audit_anchor_write()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE portal_auditevent")  # as the table's owner, whom the trigger lets

    verdict = audit_chain_verify()

    assert not verdict.ok
    assert "the trail is empty, but the anchor written at" in verdict.problem
    assert f"names event {written[2].pk} of 3: the trail was truncated" in verdict.problem


@pytest.mark.django_db
def test_a_middle_event_removed_and_the_ids_closed_up_is_named_by_the_count():
    written = events(4)
    services.audit_anchor_write()
    # Removed, and the events after it re-hashed with the key: the chain alone would hold.
    victim = AuditEvent.objects.get(pk=written[1].pk)
    tamper(("DELETE FROM portal_auditevent WHERE id = %s", [victim.pk]))
    prev = written[0].hash
    for event in AuditEvent.objects.filter(id__gt=victim.pk).order_by("id"):
        event.prev_hash = prev
        new_hash = event.compute_hash(chain.keys().current)
        tamper(
            (
                "UPDATE portal_auditevent SET prev_hash = %s, hash = %s WHERE id = %s",
                [prev, new_hash, event.pk],
            )
        )
        prev = new_hash

    verdict = audit_chain_verify()

    assert not verdict.ok
    assert "does not match the anchor" in verdict.problem or "events were removed" in verdict.problem


@pytest.mark.django_db
def test_a_rewritten_suffix_without_the_key_is_named():
    """Whoever rewrites events cannot recompute their hashes: not unkeyed, not with a key of
    their own, not under the real key's id."""
    written = events(3)
    target = AuditEvent.objects.get(pk=written[2].pk)
    target.actor_name = "Someone Else"

    for key_id, key, expected in [
        ("", "", "unkeyed hash after keyed hashes began"),
        (
            chain.key_id_of("an-attackers-own-key-0123456789abcdef"),
            "an-attackers-own-key-0123456789abcdef",
            "a key this installation does not hold",
        ),
        (target.key_id, "a-guess-at-the-real-key-0123456789abcdef", "was altered after it was written"),
    ]:
        target.key_id = key_id
        forged = target.compute_hash(key)
        tamper(
            (
                "UPDATE portal_auditevent SET actor_name = %s, key_id = %s, hash = %s WHERE id = %s",
                ["Someone Else", key_id, forged, target.pk],
            )
        )
        verdict = audit_chain_verify()
        assert (verdict.ok, verdict.first_bad_id) == (False, target.pk)
        assert expected in verdict.problem


@pytest.mark.django_db
def test_events_written_before_keyed_hashes_still_verify():
    """An installation that kept events before its chain was keyed: they verify as a prefix."""
    legacy = record("thing.legacy")
    event = AuditEvent.objects.get(pk=legacy.pk)
    event.key_id = ""
    tamper(
        (
            "UPDATE portal_auditevent SET key_id = '', hash = %s WHERE id = %s",
            [event.compute_hash(""), event.pk],
        )
    )
    record("thing.keyed")

    assert AuditEvent.objects.order_by("id").first().key_id == ""
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_a_rotated_key_verifies_what_it_hashed_while_listed(settings):
    old = events(2)
    old_key = settings.AUDIT_KEY
    settings.AUDIT_KEY, settings.AUDIT_PREVIOUS_KEYS = NEW_KEY, [old_key]
    new = record("thing.after-rotation")
    assert new.key_id == chain.key_id_of(NEW_KEY) != old[0].key_id

    assert audit_chain_verify().ok

    settings.AUDIT_PREVIOUS_KEYS = []
    verdict = audit_chain_verify()
    assert (verdict.ok, verdict.first_bad_id) == (False, old[0].pk)
    assert "list it in AUDIT_PREVIOUS_KEYS" in verdict.problem


@pytest.mark.django_db
def test_the_key_comes_from_secrets_manager_when_an_arn_is_set(settings, aws):
    secrets = boto3.client("secretsmanager", region_name=settings.AWS_REGION)
    arn = secrets.create_secret(
        Name="greenlight/audit-key",
        SecretString=json.dumps({"current": NEW_KEY, "previous": [settings.AUDIT_KEY]}),
    )["ARN"]
    before = record("thing.before")
    settings.AUDIT_KEY_SECRET_ARN, settings.AUDIT_KEY = arn, None

    after = record("thing.after")

    assert after.key_id == chain.key_id_of(NEW_KEY)
    assert before.key_id != after.key_id
    assert audit_chain_verify().ok


@pytest.fixture
def anchor_bucket(settings, aws):
    s3 = boto3.client("s3", region_name=settings.AWS_REGION)
    s3.create_bucket(Bucket="greenlight-audit-anchors", ObjectLockEnabledForBucket=True)
    settings.AUDIT_ANCHOR_BUCKET = "greenlight-audit-anchors"
    return s3


@pytest.mark.django_db
def test_anchors_go_to_s3_under_compliance_lock_and_stay(anchor_bucket, settings):
    written = events(2)
    first = services.audit_anchor_write()
    record("thing.more")
    second = services.audit_anchor_write()

    assert second.event_id > first.event_id
    newest = chain.anchor_store().newest()
    assert (newest.event_id, newest.count) == (second.event_id, 3)
    assert newest.where.startswith("s3://greenlight-audit-anchors/audit-anchors/")
    key = newest.where.removeprefix("s3://greenlight-audit-anchors/")
    head = anchor_bucket.head_object(Bucket="greenlight-audit-anchors", Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=399)
    with pytest.raises(ClientError, match="AccessDenied"):
        anchor_bucket.delete_object(Bucket="greenlight-audit-anchors", Key=key, VersionId=head["VersionId"])

    tamper(("DELETE FROM portal_auditevent WHERE id > %s", [written[0].pk]))
    verdict = audit_chain_verify()
    assert not verdict.ok and "s3://greenlight-audit-anchors/" in verdict.problem


@pytest.mark.django_db
def test_an_unchanged_head_is_not_anchored_twice():
    events(2)
    first = services.audit_anchor_write()
    again = services.audit_anchor_write()
    assert again.where == first.where


@pytest.mark.django_db
def test_verify_runs_on_from_the_last_sound_event():
    events(3)
    full = services.audit_verify_run()
    assert (full.ok, full.full, full.checked, full.total) == (True, True, 3, 3)

    events(2)
    on = services.audit_verify_run()
    assert (on.ok, on.full, on.checked, on.total) == (True, False, 2, 5)

    # The last verified event itself changed: named even though the walk starts after it.
    tamper(
        ("UPDATE portal_auditevent SET actor_name = 'x' , hash = %s WHERE id = %s", ["f" * 64, on.head_id])
    )
    broken = services.audit_verify_run()
    assert (broken.ok, broken.first_bad_id) == (False, on.head_id)
    assert "is gone or changed" in broken.problem


@pytest.mark.django_db
def test_a_chain_that_breaks_is_announced_once():
    written = events(3)
    assert services.audit_verify_run().ok
    tamper(("DELETE FROM portal_auditevent WHERE id = %s", [written[1].pk]))

    assert not tasks.audit_verify.apply(kwargs={"full": True}).get()
    assert not services.audit_verify_run(full=True).ok

    told = Notification.objects.filter(subject="The audit trail does not verify")
    assert told.count() == 1
    assert f"event {written[2].pk}" in told.get().body


@pytest.mark.django_db
def test_the_api_answers_the_latest_verdict_without_walking_the_chain(client, django_assert_max_num_queries):
    auditor = UserFactory(role=Role.AUDITOR)
    verified_login(client, auditor)
    answer = client.get("/api/v1/audit/verify/").json()
    assert answer["ok"] is None and "Not verified yet" in answer["problem"]

    written = events(3)
    tasks.audit_anchor.apply()
    tasks.audit_verify.apply()
    tamper(("DELETE FROM portal_auditevent WHERE id = %s", [written[1].pk]))
    events(50)

    with django_assert_max_num_queries(8):
        answer = client.get("/api/v1/audit/verify/").json()
    assert answer["ok"] is True and answer["checked"] == 3
    assert answer["anchor_event_id"] == written[2].pk

    tasks.audit_verify.apply(kwargs={"full": True})
    answer = client.get("/api/v1/audit/verify/").json()
    assert answer["ok"] is False and answer["first_bad_id"] == written[2].pk
    assert AuditVerdict.objects.count() == 2


def test_beat_anchors_and_verifies_the_chain(settings):
    tasks_scheduled = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks_scheduled["portal.audit_anchor"]["schedule"] == settings.AUDIT_ANCHOR_SECONDS
    verifies = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "portal.audit_verify"]
    assert sorted(e.get("kwargs", {}).get("full", False) for e in verifies) == [False, True]


@pytest.mark.django_db(databases="__all__")
def test_the_audit_page_shows_the_latest_verdict(client):
    verified_login(client, UserFactory(role=Role.AUDITOR))
    assert "has not been verified yet" in client.get("/audit/").content.decode()

    written = events(3)
    services.audit_anchor_write()
    services.audit_verify_run()
    page = client.get("/audit/").content.decode()
    assert "Chain intact: 3 events" in page and f"at event {written[2].pk}" in page

    tamper(("DELETE FROM portal_auditevent WHERE id > %s", [written[0].pk]))
    services.audit_verify_run(full=True)
    page = client.get("/audit/").content.decode()
    assert "The chain does not verify" in page and "the newest events were removed" in page
