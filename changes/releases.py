"""The change's side in the repository: what its pull request says (checks, reviews, the code
owners of the changed files, signatures), read by a task and kept current by GitHub's events,
feeding the deploy gates; and the release itself, cut step by step once the change deploys, and
reverted. The repository is reached through `integrations.scm` (GitHub or a repository on disk).
"""

import logging
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q

from changes import integrations, snapshots
from changes.choices import ChangeStatus
from changes.models import ChangeRequest, CheckRun, PullRequest, Release
from changes.services import ChangeError, _locked, _notify, change_head_moved
from integrations.scm import PullRequestReport, ScmError
from portal import clock
from portal.models import User
from portal.roles import Right, has_right, missing_right_message
from portal.services import audit_record

logger = logging.getLogger(__name__)


class RepositoryRefused(ChangeError):
    """The repository refused a step (409). `kind` says what went wrong; a step that failed on a
    rate limit or the network is worth retrying by itself, at `retry_at` when GitHub said when."""

    def __init__(self, message: str, refused: ScmError):
        super().__init__(message, conflict=True)
        self.kind, self.retry_at, self.transient = refused.kind, refused.retry_at, refused.transient

    @property
    def extra(self) -> dict:
        return {"kind": self.kind, "retry_at": self.retry_at.isoformat() if self.retry_at else None}


@contextmanager
def _repository_says(what: str, *, keep: Callable[[str], None] | None = None):
    """Runs a step in the repository; its refusal becomes a RepositoryRefused that says `what`
    was refused, once `keep` has recorded the refusal's words (after the step's own transaction
    was rolled back)."""
    try:
        yield
    except ScmError as refused:
        if keep is not None:
            keep(str(refused))
        raise RepositoryRefused(f"{what}: {refused}", refused) from None


# What the repository says about a change's pull request.


def pull_request_number(reference: str) -> int | None:
    """The number in what a person wrote for the pull request: 42, #42 or its address."""
    match = re.search(r"(?:^#?|/pull/)(\d+)/?$", reference.strip())
    return int(match.group(1)) if match else None


def pull_request_read(*, change: ChangeRequest, scm) -> PullRequest:
    """Asks the repository about releasing the change's source branch into its target: its pull
    request (the one the change names, else the open one, else a new one once the change is
    submitted), checks, reviews, code owners and unsigned commits, and keeps the answer for the
    gates. A refusal is kept on the row in words and raised."""
    with _repository_says(
        f"Reading the repository for {change.number}", keep=lambda words: _pull_request_error(change, words)
    ):
        report = scm.pull_request(
            change.source_branch,
            change.target_branch,
            number=pull_request_number(change.pull_request),
            title="" if change.status == ChangeStatus.DRAFT else f"{change.number}: {change.title}",
            body=f"Released as change {change.number} ({change.get_change_type_display().lower()}).",
        )
        before = PullRequest.objects.filter(change=change).values_list("head_sha", flat=True).first() or ""
        carried = (
            bool(before)
            and before != report.head
            and change.environment.approval_policy.keep_approvals_on_target_merge
            and scm.only_merges_target(before, report.head, change.target_branch)
        )
    return _pull_request_keep(change, report, carried_from=before if carried else "")


@transaction.atomic
def _pull_request_error(change: ChangeRequest, words: str) -> None:
    change = _locked(change)  # as every writer of the row: one at a time
    PullRequest.objects.update_or_create(change=change, defaults={"error": words})


def review_entry(*, login: str, state: str, commit: str, submitted_at) -> dict:
    """A review as the pull request row keeps it, whether read from the API or told by an event:
    the login lowercased, the state uppercased, the time in UTC as GitHub writes it
    ("2026-11-26T09:30:00Z"), so the same review is recognised however it came."""
    moment = submitted_at
    if isinstance(moment, str) and moment:
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            moment = None
    if isinstance(moment, datetime):
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        submitted_at = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "login": login.lower(),
        "state": state.upper(),
        "commit": commit,
        "submitted_at": submitted_at if isinstance(submitted_at, str) else "",
    }


def _verdict(pull: PullRequest) -> dict:
    """What the gates read from the pull request; a reading that changes it is audited."""
    return {
        "number": pull.number,
        "head": pull.head_sha,
        "mergeable": pull.mergeable,
        "required_checks": pull.required_checks,
        "reviews": pull.latest_reviews(),
        "owners": pull.owners,
        "owner_logins": pull.owner_logins,
        "unresolved_teams": pull.unresolved_teams,
        "unsigned": pull.unsigned,
    }


@transaction.atomic
def _pull_request_keep(
    change: ChangeRequest, report: PullRequestReport, *, carried_from: str = ""
) -> PullRequest:
    """Keeps what the repository said; a new head dismisses the approvals given on another commit
    (or carries them over from `carried_from`, when the new commits only merge the target in)."""
    change = _locked(change)
    pull = PullRequest.objects.filter(change=change).first() or PullRequest(change=change)
    before = _verdict(pull) if pull.read_at else None
    head_before = pull.head_sha
    carried = bool(carried_from) and carried_from == head_before  # not moved again since
    if head_before != report.head:
        pull.carried_from = [*pull.carried_from, head_before] if carried else []
    pull.number, pull.url, pull.head_sha = report.number, report.url, report.head
    pull.mergeable = report.mergeable
    pull.required_checks = report.required_checks
    pull.reviews = [review_entry(**asdict(review)) for review in report.reviews]
    pull.changed_files = len(report.changed_files)
    pull.owners, pull.owner_logins, pull.unsigned = report.owners, report.owner_logins, report.unsigned
    pull.unresolved_teams = report.unresolved_teams
    pull.read_at, pull.error = clock.now(), ""
    pull.commits_listed = report.commits is not None
    pull.save()
    _commits_keep(pull, report.commits or [])
    after = _verdict(pull)
    if report.url and not change.pull_request:
        change.pull_request = report.url
        change.save(update_fields=["pull_request"])
        after["pull_request"] = report.url
    if after != before:
        audit_record(actor=None, action="change.pull_request_read", target=change, before=before, after=after)
    change_head_moved(change=change, before=head_before, after=report.head, carried=carried)
    if report.checks is None:  # the backend cannot see checks: those GitHub told of stay
        return pull
    reported = {check.name for check in report.checks}
    gone = list(change.checks.exclude(name__in=reported).values_list("name", flat=True))
    if gone:
        change.checks.filter(name__in=gone).delete()
        audit_record(actor=None, action="change.checks_gone", target=change, after={"checks": gone})
    for check in report.checks:
        check_run_record(
            change=change,
            name=check.name[:200],
            status=check.status[:20],
            conclusion=check.conclusion[:20],
            head_sha=report.head,
            url=check.url[:500],
        )
    return pull


def _commits_keep(pull: PullRequest, commits: list[tuple[str, str]]) -> None:
    """Keeps what the branch would bring, when it differs from what was kept."""
    from changes.models import PullCommit

    kept = list(pull.commits.values_list("sha", flat=True))
    if kept == [sha for sha, _ in commits]:
        return
    pull.commits.all().delete()
    PullCommit.objects.bulk_create(
        PullCommit(pull=pull, position=i, sha=sha, subject=subject[:200])
        for i, (sha, subject) in enumerate(commits)
    )


def changes_of_pull_request(number: int, *, head: str = "", base: str = ""):
    """The open changes that name this pull request (by number, #number or its address), and
    those that name none but release its branches."""
    named = (
        Q(pull_request=str(number))
        | Q(pull_request=f"#{number}")
        | Q(pull_request__endswith=f"/pull/{number}")
    )
    if head and base:
        named |= Q(pull_request="", source_branch=head, environment__branch=base)
    return ChangeRequest.objects.filter(named).open()


def changes_at_head(commit: str):
    """The open changes whose branch was last read at this commit: a check GitHub runs on a
    commit without naming a pull request (a push, a fork's branch) is a check of their code, and a
    repository on disk has no pull requests for a check to name."""
    return ChangeRequest.objects.filter(pull__head_sha=commit).open()


@transaction.atomic
def check_run_record(
    *, change: ChangeRequest, name: str, status: str, conclusion: str, head_sha: str, url: str
):
    """Keeps the latest state of one check on the change's pull request; audits a change of it.
    A check on a commit other than the head the pull request was read at is not kept: the pull
    request may have moved since it was read, so it is read again (once this commits), and the
    read brings the checks of its head."""
    change = _locked(change)
    pull = PullRequest.objects.filter(change=change).first()
    if pull is not None and pull.head_sha and head_sha and head_sha != pull.head_sha:
        from changes.tasks import pull_request_read

        transaction.on_commit(lambda pk=change.pk: pull_request_read.delay(pk))
        return None
    run = CheckRun.objects.filter(change=change, name=name).first()
    before = {"status": run.status, "conclusion": run.conclusion} if run else None
    after = {"status": status, "conclusion": conclusion or ""}
    if before == after and run.head_sha == head_sha:
        return run
    run, _ = CheckRun.objects.update_or_create(
        change=change,
        name=name,
        defaults={**after, "head_sha": head_sha, "url": url, "updated_at": clock.now()},
    )
    audit_record(
        actor=None,
        action="change.check_run",
        target=change,
        before=before,
        after={"check": name, **after, "commit": head_sha},
    )
    return run


@transaction.atomic
def review_record(*, change: ChangeRequest, login: str, state: str, commit: str, submitted_at: str):
    """Keeps a review of the change's pull request that GitHub reported (APPROVED,
    CHANGES_REQUESTED, COMMENTED or DISMISSED); audits it."""
    change = _locked(change)
    pull, _ = PullRequest.objects.get_or_create(change=change)
    review = review_entry(login=login, state=state, commit=commit, submitted_at=submitted_at)
    if review in pull.reviews:
        return pull
    pull.reviews = [*pull.reviews, review]
    pull.save(update_fields=["reviews"])
    audit_record(actor=None, action="change.review", target=change, after=review)
    return pull


# Cutting the release in the repository.


def release_cut(*, change: ChangeRequest, scm) -> Release:
    """Merges the change's source branch into its target, tags the merge with the next version
    and publishes the notes, for a change whose deployment has started (the deploy task calls it).

    The commit merged is the one the gates judged, kept on the release before the merge is asked
    for. Each step is recorded as it is done, in its own transaction, so a retry after a failure
    at any step continues from there: never a second merge, never a merge of another commit,
    never a second tag, never a tag on a commit that is not merged. A refusal is a
    RepositoryRefused that says which step stopped and why."""
    release = _release_begin(change, scm)
    for step, done in (
        (_release_head, lambda r: bool(r.head_commit) or r.merged_at is not None),
        (_release_merge, lambda r: r.merged_at is not None),
        (_release_tag, lambda r: r.tagged_at is not None),
        (_release_publish, lambda r: r.published_at is not None),
    ):
        if not done(release):
            release = _release_step(release, scm, step, done)
    return release


@transaction.atomic
def _release_begin(change: ChangeRequest, scm) -> Release:
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
        with _repository_says(f"Release of {change.number}"):
            last = scm.last_tag(change.target_branch)
            version = next_version(last, scm.tags(), change.version_bump)
    except VersionRefused as refused:
        raise ChangeError(f"Release of {change.number}: {refused}", conflict=True) from None
    release = Release.objects.create(
        change=change, version=str(version), previous_tag=last or "", created_at=clock.now()
    )
    _step_done(
        actor=None,
        action="release.begin",
        target=change,
        after={"version": release.version, "previous": last},
    )
    return release


def _step_done(*, actor: User | None, action: str, target: ChangeRequest, after: dict) -> None:
    """One step of a release done: audited (in the step's transaction) and logged with its ids."""
    audit_record(actor=actor, action=action, target=target, after=after)
    logger.info(
        "%s %s: %s %s",
        target.number,
        action,
        after.get("version", ""),
        after.get("commit") or after.get("url") or "",
    )


def _keep_error(release: Release, words: str) -> None:
    Release.objects.filter(pk=release.pk).update(error=words)
    snapshots.forget(release.change_id)


def _release_step(release: Release, scm, step, done: Callable[[Release], bool]) -> Release:
    """One step under the release row's lock (a step another worker did meanwhile is not done
    again); a refusal is kept on the row and raised."""
    with _repository_says(
        f"Release {release.version} of {release.change.number}",
        keep=lambda words: _keep_error(release, words),
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


def _release_head(release: Release, scm) -> None:
    """Keeps the commit to merge before anything is merged: the one the change's quorum approved,
    and only while it is still the head of the source branch. A branch that moved on since is
    refused: its new commits were never approved (nor read, checked, or soaked)."""
    from changes.selectors import pull_request_of

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
    _step_done(
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


def _release_merge(release: Release, scm) -> None:
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
    _step_done(
        actor=None,
        action="release.merged",
        target=change,
        after={"version": release.version, "commit": merge},
    )


def shas_in_words(shas: list[str]) -> str:
    return ", ".join(sha[:10] for sha in shas[:5]) + (" and more" if len(shas) > 5 else "")


def _release_tag(release: Release, scm) -> None:
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
    _step_done(
        actor=None,
        action="release.tagged",
        target=change,
        after={"version": release.version, "commit": release.merge_commit},
    )


def _release_publish(release: Release, scm) -> None:
    release.url = scm.publish(release.version, release.notes)
    release.published_at = clock.now()
    _step_done(
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


@transaction.atomic
def release_revert(*, actor: User, change: ChangeRequest, scm):
    """Undoes a released change in the repository (the code half of a rollback; traffic goes back
    through the deployment): one revert commit on the target branch in a repository on disk, a
    pull request carrying it on GitHub. Returns what was made (`commit`, and `url` on GitHub)."""
    if not (
        has_right(actor, Right.DEPLOYMENT_ROLLBACK) or has_right(actor, Right.DEPLOYMENT_ROLLBACK_INCIDENT)
    ):
        raise PermissionDenied(missing_right_message(Right.DEPLOYMENT_ROLLBACK))
    release = Release.objects.select_for_update().filter(change=change).first()
    if release is None or release.tagged_at is None:
        raise ChangeError(f"{change.number} has no tagged release to revert.", conflict=True)
    with _repository_says(f"Revert of {release.version}"):
        reverted = scm.revert(release.version, change.target_branch)
    # The environment's branch is no longer ahead of live by this release once the revert is on it.
    release.reverted_commit, release.reverted_url = reverted.commit, reverted.url
    release.reverted_at = clock.now()
    release.save(update_fields=["reverted_commit", "reverted_url", "reverted_at"])
    _step_done(
        actor=actor,
        action="release.revert",
        target=change,
        after={"version": release.version, "commit": reverted.commit, "url": reverted.url},
    )
    where = f"opened {reverted.url} to revert" if reverted.url else "reverted"
    _notify(
        change,
        f"{release.version} reverted ({change.number})",
        f"{actor.display_name} {where} {release.version} on {change.target_branch}.",
    )
    return reverted
