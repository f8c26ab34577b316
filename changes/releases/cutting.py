"""The release, cut step by step once the change deploys: the head of the release branch, the
merge, the tag, the published notes; each step recorded, so a step that failed is taken up again."""

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from changes import integrations, snapshots
from changes.choices import ChangeStatus
from changes.models import ChangeRequest, Release, pull_request_of
from changes.releases.base import repository_says
from changes.services import ChangeError, _locked
from integrations.scm import ScmError
from integrations.scm.base import Repository
from portal import clock
from portal.models import User
from portal.services import audit_record

logger = logging.getLogger(__name__)

# One step of the release, done on the locked row in the repository.
Step = Callable[[Release, Repository], None]


def release_cut(*, change: ChangeRequest, scm: Repository) -> Release:
    """Merges the change's source branch into its target, tags the merge with the next version
    and publishes the notes, for a change whose deployment has started (the deploy task calls it).

    The commit merged is the one the gates judged, kept on the release before the merge is asked
    for. Each step is recorded as it is done, in its own transaction, so a retry after a failure
    at any step continues from there: never a second merge, never a merge of another commit,
    never a second tag, never a tag on a commit that is not merged. A refusal is a
    RepositoryRefused that says which step stopped and why."""
    release = _release_begin(change, scm)
    steps: tuple[tuple[Step, Callable[[Release], bool]], ...] = (
        (_release_head, lambda r: bool(r.head_commit) or r.merged_at is not None),
        (_release_merge, lambda r: r.merged_at is not None),
        (_release_tag, lambda r: r.tagged_at is not None),
        (_release_publish, lambda r: r.published_at is not None),
    )
    for step, done in steps:
        if not done(release):
            release = _release_step(release, scm, step, done)
    return release


@transaction.atomic
def _release_begin(change: ChangeRequest, scm: Repository) -> Release:
    from integrations.scm.versions import VersionRefused, next_version

    change = _locked(change)
    if change.status != ChangeStatus.DEPLOYING:
        raise ChangeError(
            f"{change.number} is {change.get_status_display().lower()}: its release is cut once it deploys.",
            conflict=True,
        )
    release = Release.objects.filter(change=change).first()
    if release is not None:
        return release
    try:
        with repository_says(f"Release of {change.number}"):
            last = scm.last_tag(change.target_branch)
            version = next_version(last, scm.tags(), change.version_bump)
    except VersionRefused as refused:
        raise ChangeError(f"Release of {change.number}: {refused}", conflict=True) from None
    release = Release.objects.create(
        change=change, version=str(version), previous_tag=last or "", created_at=clock.now()
    )
    step_done(
        actor=None,
        action="release.begin",
        target=change,
        after={"version": release.version, "previous": last},
    )
    return release


def step_done(*, actor: User | None, action: str, target: ChangeRequest, after: dict[str, Any]) -> None:
    """One step of a release done: audited (in the step's transaction) and logged with its ids."""
    audit_record(actor=actor, action=action, target=target, after=after)
    logger.info(
        "%s %s: %s %s",
        target.number,
        action,
        after.get("version", ""),
        after.get("commit") or after.get("url") or "",
    )


def keep_error(release: Release, words: str) -> None:
    Release.objects.filter(pk=release.pk).update(error=words)
    snapshots.forget(release.change_id)


def _release_step(release: Release, scm: Repository, step: Step, done: Callable[[Release], bool]) -> Release:
    """One step under the release row's lock (a step another worker did meanwhile is not done
    again); a refusal is kept on the row and raised."""
    with repository_says(
        f"Release {release.version} of {release.change.number}",
        keep=lambda words: keep_error(release, words),
    ):
        with transaction.atomic():
            locked = (
                Release.objects.select_for_update()
                .select_related("change__environment__approval_policy")
                .get(pk=release.pk)
            )
            if not done(locked):
                step(locked, scm)
                locked.error = ""
                locked.save()
            return locked


def _release_head(release: Release, scm: Repository) -> None:
    """Keeps the commit to merge before anything is merged: the one the change's quorum approved,
    and only while it is still the head of the source branch. A branch that moved on since is
    refused: its new commits were never approved (nor read, checked, or soaked)."""
    change = release.change
    source, approved = change.source_branch, change.approved_commit
    if not approved:
        raise ScmError(
            f"{change.number} was approved before its branch was read, on no commit: nothing is merged. "
            "Edit or submit it again so that it is approved on a commit.",
            kind="conflict",
        )
    now = scm.head(source)
    if now != approved:
        raise ScmError(
            f"{source} moved to {now[:10]} after {approved[:10]} was approved: the new commits were never "
            "approved, so nothing is merged. They are read, approved and soak before they are released.",
            kind="conflict",
        )
    pull = pull_request_of(change)
    if pull is None or pull.head_sha != approved:
        raise ScmError(
            f"{change.number}'s branch was last read at another commit than the approved {approved[:10]}: "
            "nothing is merged.",
            kind="conflict",
        )
    together = _released_together(change)
    release.head_commit = approved
    release.pull_number = pull.number
    release.shipped_with.set(together)
    step_done(
        actor=None,
        action="release.head",
        target=change,
        after={
            "version": release.version,
            "commit": approved,
            "pull_request": release.pull_number,
            "released_together": [other.number for other in together],
        },
    )


def _released_together(change: ChangeRequest) -> list[ChangeRequest]:
    """The other changes whose commits the release carries, each approved on them; a commit of a
    change that was not stops the release (as it stops the deploy) before anything is merged."""
    from changes.selectors import change_contents, contents_refusal, released_together

    contents = change_contents(change) or []
    refusal = contents_refusal(change, contents)
    if refusal:
        raise ScmError(f"{refusal}: nothing is merged.", kind="conflict")
    return released_together(contents)


def _release_merge(release: Release, scm: Repository) -> None:
    """Merges the kept head, or finds the merge of it that was made before (a crash, a lost
    answer): never a merge of another commit, never a second one."""
    change = release.change
    source, target, head = change.source_branch, change.target_branch, release.head_commit
    if scm.is_merged(head, target):
        merge = scm.merge_that_brought(head, source, target, number=release.pull_number)
        if merge is None:
            if release.previous_tag and scm.is_merged(head, release.previous_tag):
                raise ScmError(
                    f"{source} at {head[:10]} is in {release.previous_tag} already: there is nothing to "
                    "release.",
                    kind="missing",
                )
            raise ScmError(
                f"{head[:10]} (the head of {source} that was checked) is on {target} already, but the merge "
                "that brought it cannot be found: it was merged outside this release (by hand, or as a "
                "fast-forward). Nothing is merged again; name that merge commit on the release by hand "
                "so it is tagged.",
                kind="missing",
            )
    else:
        if change.environment.approval_policy.signed_commits_required:
            unsigned = scm.unsigned_commits(head, target)
            if unsigned:
                raise ScmError(
                    f"{len(unsigned)} commit(s) on {source} are not signed ({shas_in_words(unsigned)}); "
                    "every commit released must carry a verified signature.",
                    kind="unsigned",
                )
        merge = scm.merge(
            source,
            target,
            f"Release {release.version}: {change.number} {change.title}",
            head=head,
            number=release.pull_number,
            all_checks=change.environment.approval_policy.checks_must_pass,
        )
    release.merge_commit, release.merged_at = merge, clock.now()
    step_done(
        actor=None,
        action="release.merged",
        target=change,
        after={"version": release.version, "commit": merge},
    )


def shas_in_words(shas: list[str]) -> str:
    return ", ".join(sha[:10] for sha in shas[:5]) + (" and more" if len(shas) > 5 else "")


def _release_tag(release: Release, scm: Repository) -> None:
    change = release.change
    if not scm.is_merged(release.merge_commit, change.target_branch):
        raise ScmError(
            f"{release.merge_commit[:10]} is not on {change.target_branch}: it is not tagged.", kind="missing"
        )
    existing = scm.tag_commit(release.version)
    if existing is not None and existing != release.merge_commit:
        raise ScmError(
            f"{release.version} exists already on another commit ({existing[:10]}).", kind="conflict"
        )
    notes = scm.release_notes(release.previous_tag or None, release.merge_commit, version=release.version)
    together = list(release.shipped_with.order_by("pk"))
    # The notes name every change released: the one deployed, and those whose work it carries.
    named = [f"{c.number} {c.title}" for c in [change, *together]]
    release.notes = f"Released together: {'; '.join(named)}\n\n{notes}" if together else notes
    if existing is None:
        lines = "\n".join(named)
        scm.tag(release.version, release.merge_commit, f"{release.version}\n\n{lines}\n\n{notes}")
    release.tagged_at = clock.now()
    step_done(
        actor=None,
        action="release.tagged",
        target=change,
        after={"version": release.version, "commit": release.merge_commit},
    )


def _release_publish(release: Release, scm: Repository) -> None:
    release.url = scm.publish(release.version, release.notes)
    release.published_at = clock.now()
    step_done(
        actor=None,
        action="release.published",
        target=release.change,
        after={"version": release.version, "url": release.url},
    )
    integrations.checklist_prove(
        change=release.change,
        integration="release",
        evidence=f"{release.version}: {release.url or 'notes on the annotated tag'}",
    )
