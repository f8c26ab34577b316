"""The change's page and API read it from the cache between writes, and every write is seen at once.

The tests commit for real (a transactional database): a snapshot is never kept from rows of a
transaction that has not committed, so inside a test's transaction nothing would be kept."""

import socket

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from changes import releases, selectors, services, snapshots
from changes.models import Approval, ChangeRequest, ChecklistItem, CheckRun, PullRequest, Release
from portal import clock, generations
from tests.conftest import client_for
from tests.factories import UserFactory, change_create

pytestmark = pytest.mark.django_db(transaction=True)

KEPT = ("stakeholders", "checklist", "approvals", "comments", "checks")
ONE_TO_ONE = ("environment", "requester", "incident", "standard_template", "pull", "release")


def values(row) -> tuple | None:
    if row is None:
        return None
    deferred = row.get_deferred_fields()
    return tuple(
        (f.attname, getattr(row, f.attname)) for f in row._meta.concrete_fields if f.attname not in deferred
    )


def kept(change: ChangeRequest) -> tuple:
    """Everything the snapshot holds, as values: the change, its rows and what it shows of others."""
    related = []
    for name in ONE_TO_ONE:
        try:
            related.append(values(getattr(change, name)))
        except (PullRequest.DoesNotExist, Release.DoesNotExist):
            related.append(None)
    return (
        values(change),
        values(change.environment.approval_policy),
        tuple(related),
        tuple(tuple(values(row) for row in getattr(change, name).all()) for name in KEPT),
        tuple(values(item.done_by) for item in change.checklist.all()),
        tuple(values(a.approver) for a in change.approvals.all()),
        tuple(values(c.author) for c in change.comments.all()),
        tuple(change.service_names),
    )


def shown(viewer, change) -> tuple:
    return kept(selectors.change_shown(viewer, change.pk))


def fresh(viewer, change) -> tuple:
    return kept(selectors.change_detail(viewer, change.pk))


@pytest.fixture
def change(developer, qa):
    return change_create(developer, stakeholders=[qa])


def test_a_second_view_reads_none_of_the_changes_rows(change, auditor):
    api = client_for(auditor)
    first = api.get(f"/api/v1/changes/{change.pk}/")
    with CaptureQueriesContext(connection) as second_queries:
        second = api.get(f"/api/v1/changes/{change.pk}/")
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    tables = ("changes_changerequest", "changes_checklistitem", "changes_approval", "changes_comment")
    read = [
        q["sql"] for q in second_queries.captured_queries if any(f'FROM "{t}"' in q["sql"] for t in tables)
    ]
    assert read == []


def _tick(change, developer, qa):
    item = change.checklist.filter(integration="", vouched_by="").first()
    services.checklist_item_set(actor=developer, item=item, done=True, evidence="done by hand")


def _decide(change, developer, qa):
    services.change_submit(actor=developer, change=change)
    services.change_decide(actor=qa, change=change, decision="approve")


def _comment(change, developer, qa):
    services.comment_add(actor=qa, change=change, body="Looks right.")


def _check_run(change, developer, qa):
    CheckRun.objects.create(
        change=change, name="tests", status="completed", conclusion="success", updated_at=clock.now()
    )


def _watch_from_the_persons_side(change, developer, qa):
    UserFactory(username="watcher").watched_changes.add(change)


def _rename_a_service(change, developer, qa):
    service = change.services.get()
    service.name = "renamed"
    service.save()


def _rename_the_requester(change, developer, qa):
    developer.first_name = "Renamed"
    developer.save()


def _dismiss_on_new_commits(change, developer, qa):
    """Approvals dismissed with one UPDATE, the change staying submitted (a quorum of two): no
    signal, so the service forgets the snapshot itself."""
    policy = change.environment.approval_policy
    policy.min_approvals = 2
    policy.save()
    _decide(change, developer, qa)
    Approval.objects.filter(change=change).update(commit="a" * 40)
    assert [a.dismissed_at for a in selectors.change_shown(developer, change.pk).approvals.all()] == [None]
    with transaction.atomic():
        locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
        assert services.change_head_moved(change=locked, before="a" * 40, after="b" * 40) == 1
    assert ChangeRequest.objects.get(pk=change.pk).status == "submitted"


def _keep_a_release_error(change, developer, qa):
    """A repository's refusal kept on the release with one UPDATE."""
    release = Release.objects.create(change=change, version="v1.0.0", created_at=clock.now())
    assert selectors.change_shown(developer, change.pk).release.error == ""  # kept before the refusal
    releases.keep_error(release, "the merge was refused")


def _add_migration_items(change, developer, qa):
    """Checklist items added with bulk_create, which sends no signal."""
    services.change_update(actor=developer, change=change, data={"has_migrations": True})


@pytest.mark.parametrize(
    "write",
    [
        _tick,
        _decide,
        _comment,
        _check_run,
        _watch_from_the_persons_side,
        _rename_a_service,
        _rename_the_requester,
        _dismiss_on_new_commits,
        _keep_a_release_error,
        _add_migration_items,
    ],
)
def test_the_next_view_after_a_write_shows_it(change, developer, qa, write):
    before = shown(developer, change)
    assert shown(developer, change) == before  # kept, and read back the same
    write(change, developer, qa)
    after = shown(developer, change)
    assert after != before, "the write changed nothing the snapshot holds: the test proves nothing"
    assert after == fresh(developer, change)


def test_rows_a_transaction_wrote_and_rolled_back_are_never_kept(change, developer):
    item = change.checklist.filter(integration="", vouched_by="").first()
    before = shown(developer, change)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.checklist_item_set(actor=developer, item=item, done=True, evidence="done by hand")
        assert ChecklistItem.objects.get(pk=item.pk).done
        selectors.change_shown(developer, change.pk)  # reads the uncommitted tick
        raise RuntimeError("rolled back")
    assert shown(developer, change) == before == fresh(developer, change)


def test_a_view_that_read_before_a_write_committed_is_not_kept_after_it(change, developer):
    """A slow view read the rows before the write and fills the cache after it: under the old
    generation, which the write's bumps left behind."""
    stale = selectors.change_detail(developer, change.pk)
    [generation, catalogue] = generations.current(snapshots._name(change.pk), snapshots.CATALOGUE)
    _comment(change, developer, developer)
    prefix = f"change-snapshot:{snapshots.VERSION}:{snapshots._shape()}:change:{change.pk}"
    key = f"{prefix}:{generation}:{catalogue}"
    cache.set(key, stale)
    assert shown(developer, change) == fresh(developer, change) != kept(stale)


def test_a_person_without_the_right_to_view_gets_no_snapshot(change, developer):
    selectors.change_shown(developer, change.pk)
    nobody = UserFactory(username="gone", is_active=False)
    with pytest.raises(ChangeRequest.DoesNotExist):
        selectors.change_shown(nobody, change.pk)


def test_without_the_cache_the_page_reads_the_rows_and_a_write_goes_through(change, developer, qa, settings):
    """A cache that cannot be reached never stops a view nor a write: the view reads the rows."""
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{port}/0"}}
    _comment(change, developer, qa)
    assert shown(developer, change) == fresh(developer, change)
    assert [c.body for c in selectors.change_shown(developer, change.pk).comments.all()] == ["Looks right."]


def activity(change) -> tuple[list, list]:
    from deployments.change_page import latest_deployments

    shown = ChangeRequest.objects.get(pk=change.pk)
    history, deployments = selectors.change_timeline(shown), latest_deployments(shown)
    return [(e.pk, e.action) for e in history], [(d.pk, d.state) for d in deployments]


def test_the_pages_timeline_and_deployments_show_a_write_at_once(change, developer):
    from datetime import timedelta

    from deployments.models import Deployment
    from portal.services import audit_record

    before = activity(change)
    assert activity(change) == before and before[1] == []
    with transaction.atomic():
        audit_record(actor=developer, action="change.noted", target=change)
    history, _ = activity(change)
    assert history[:-1] == before[0] and history[-1][1] == "change.noted"
    at = clock.now() - timedelta(minutes=5)
    deployment = Deployment.objects.create(
        change=change,
        environment=change.environment,
        started_by=developer,
        created_at=at,
        from_colour="blue",
        to_colour="green",
        plan=[100],
        bake_seconds=0,
        analysis_seconds=0,
        state_since=at,
        next_run_at=at,
    )
    assert activity(change)[1] == [(deployment.pk, Deployment.State.PREFLIGHT)]
    Deployment.objects.filter(pk=deployment.pk).update(lease_owner="worker-1")  # not shown: kept
    deployment.state = Deployment.State.SUCCEEDED
    deployment.save(update_fields=["state"])
    assert activity(change)[1] == [(deployment.pk, Deployment.State.SUCCEEDED)]


def test_a_sign_in_leaves_every_snapshot_standing_and_a_renamed_person_does_not(change, developer):
    from django.contrib.auth.models import update_last_login

    [before] = generations.current(snapshots.CATALOGUE)
    update_last_login(None, developer)
    assert generations.current(snapshots.CATALOGUE) == [before]
    developer.first_name = "Renamed"
    developer.save(update_fields=["first_name"])
    assert generations.current(snapshots.CATALOGUE) != [before]


def test_a_migration_run_reads_every_snapshot_anew(change):
    from django.core.management import call_command

    [before] = generations.current(snapshots.CATALOGUE)
    call_command("migrate", verbosity=0)  # data migrations write through models that send no signal
    assert generations.current(snapshots.CATALOGUE) != [before]


def test_a_transaction_that_wrote_reads_its_own_rows_whatever_another_view_kept(change, developer):
    """Another view filled the entry of the generation the write bumped to, from the rows before
    the write; the writer, before it commits, reads its own rows."""
    stale = selectors.change_detail(developer, change.pk)
    with transaction.atomic():
        services.comment_add(actor=developer, change=change, body="Mine.")
        [generation, catalogue] = generations.current(snapshots._name(change.pk), snapshots.CATALOGUE)
        prefix = f"change-snapshot:{snapshots.VERSION}:{snapshots._shape()}:change:{change.pk}"
        cache.set(f"{prefix}:{generation}:{catalogue}", stale)
        mine = selectors.change_shown(developer, change.pk)
        assert [c.body for c in mine.comments.all()] == ["Mine."]
