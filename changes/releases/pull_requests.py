"""What the repository says about a change's pull request: read by a task, kept current by
GitHub's events (check runs, reviews), feeding the deploy gates."""

import logging
import re
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Q

from changes.choices import ChangeStatus
from changes.models import ChangeRequest, ChangeRequestQuerySet, CheckRun, PullCommit, PullRequest
from changes.releases.base import repository_says
from changes.services import _locked, change_head_moved
from integrations.scm import PullRequestReport
from integrations.scm.base import Repository
from portal import clock
from portal.services import audit_record

logger = logging.getLogger(__name__)


def pull_request_number(reference: str) -> int | None:
    """The number in what a person wrote for the pull request: 42, #42 or its address."""
    match = re.search(r"(?:^#?|/pull/)(\d+)/?$", reference.strip())
    return int(match.group(1)) if match else None


def pull_request_read(*, change: ChangeRequest, scm: Repository) -> PullRequest:
    """Asks the repository about releasing the change's source branch into its target: its pull
    request (the one the change names, else the open one, else a new one once the change is
    submitted), checks, reviews, code owners and unsigned commits, and keeps the answer for the
    gates. A refusal is kept on the row in words and raised."""
    with repository_says(
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


def review_entry(
    *, login: str, state: str, commit: str, submitted_at: str | datetime | None
) -> dict[str, str]:
    """A review as the pull request row keeps it, whether read from the API or told by an event:
    the login lowercased, the state uppercased, the time in UTC as GitHub writes it
    ("2026-11-26T09:30:00Z"), so the same review is recognised however it came."""
    moment: str | datetime | None = submitted_at
    if isinstance(moment, str) and moment:
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            moment = None
    if isinstance(moment, datetime):
        try:
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
            submitted_at = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        except OverflowError:  # a time at the very edge of the calendar ("0001-01-01T00:00+14:00")
            submitted_at = ""
    return {
        "login": login.lower(),
        "state": state.upper(),
        "commit": commit,
        "submitted_at": submitted_at if isinstance(submitted_at, str) else "",
    }


def _verdict(pull: PullRequest) -> dict[str, Any]:
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
    kept = list(pull.commits.values_list("sha", flat=True))
    if kept == [sha for sha, _ in commits]:
        return
    pull.commits.all().delete()
    PullCommit.objects.bulk_create(
        PullCommit(pull=pull, position=i, sha=sha, subject=subject[:200])
        for i, (sha, subject) in enumerate(commits)
    )


def changes_of_pull_request(number: int, *, head: str = "", base: str = "") -> ChangeRequestQuerySet:
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


def changes_at_head(commit: str) -> ChangeRequestQuerySet:
    """The open changes whose branch was last read at this commit: a check GitHub runs on a
    commit without naming a pull request (a push, a fork's branch) is a check of their code, and a
    repository on disk has no pull requests for a check to name."""
    return ChangeRequest.objects.filter(pull__head_sha=commit).open()


@transaction.atomic
def check_run_record(
    *, change: ChangeRequest, name: str, status: str, conclusion: str, head_sha: str, url: str
) -> CheckRun | None:
    """Keeps the latest state of one check on the change's pull request; audits a change of it.
    A check on a commit other than the head the pull request was read at is not kept: the pull
    request may have moved since it was read, so it is read again (once this commits), and the
    read brings the checks of its head."""
    change = _locked(change)
    pull = PullRequest.objects.filter(change=change).first()
    if pull is not None and pull.head_sha and head_sha and head_sha != pull.head_sha:
        from changes.tasks import pull_request_read

        def read(pk: int = change.pk) -> None:
            pull_request_read.delay(pk)

        transaction.on_commit(read)
        return None
    run = CheckRun.objects.filter(change=change, name=name).first()
    before = {"status": run.status, "conclusion": run.conclusion} if run else None
    after = {"status": status, "conclusion": conclusion or ""}
    if run is not None and before == after and run.head_sha == head_sha:
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
def review_record(
    *, change: ChangeRequest, login: str, state: str, commit: str, submitted_at: str
) -> PullRequest:
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
