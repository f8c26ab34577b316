"""Change request tasks: reminders to pending approvers, the staging soak opening with time, and
the repository: reading pull requests and cutting releases."""

from datetime import timedelta

from celery import shared_task

from changes import releases, services
from changes.choices import ChangeStatus
from changes.models import ChangeRequest
from integrations import scm
from portal import clock

# A pull request read this recently is not read again by the catch-up: GitHub's events and the
# reads they ask for keep it current.
RECENTLY_READ = timedelta(minutes=10)


@shared_task(name="changes.approval_reminders", ignore_result=True, acks_late=True)
def approval_reminders() -> int:
    """Beat runs this every 15 minutes; each change is reminded at most once per reminder period."""
    reminded = 0
    for change in ChangeRequest.objects.filter(status=ChangeStatus.SUBMITTED).only("pk").iterator():
        reminded += bool(services.change_remind(change=change))
    return reminded


@shared_task(name="changes.staging_soak_check", ignore_result=True, acks_late=True)
def staging_soak_check() -> int:
    """Beat runs this every 15 minutes: a soak opens by time passing, with nothing reported."""
    opened = 0
    waiting = ChangeRequest.objects.open().filter(
        checklist__integration="staging_soak", checklist__done=False
    )
    for change in waiting.only("pk").distinct().iterator():
        opened += services.soak_check(change=change)
    return opened


def repository_retry(task, refused: releases.RepositoryRefused):
    """Reschedules a task the repository turned away for now: at GitHub's reset time after a rate
    limit, with backoff after a network error. Never a sleep inside a worker."""
    from portal.tasks import retry_delay

    if refused.retry_at is not None:
        return task.retry(exc=refused, eta=refused.retry_at)
    return task.retry(exc=refused, countdown=retry_delay(task.request.retries))


@shared_task(name="changes.pull_request_read", bind=True, ignore_result=True, acks_late=True, max_retries=8)
def pull_request_read(self, change_id: int) -> str:
    """Reads the change's pull request from the repository (its checks, reviews, code owners and
    signatures) for the gates. A refusal is kept on the change; a passing one is tried again."""
    change = ChangeRequest.objects.filter(pk=change_id).open().first()
    if change is None:
        return "closed"
    try:
        releases.pull_request_read(change=change, scm=scm.repository())
    except scm.ScmError as refused:  # no repository configured
        return str(refused)
    except releases.RepositoryRefused as refused:
        if refused.transient:
            raise repository_retry(self, refused) from None
        return str(refused)
    return "read"


@shared_task(name="changes.pull_requests_read", ignore_result=True, acks_late=True)
def pull_requests_read() -> int:
    """Beat runs this every 15 minutes: GitHub's events keep pull requests current, and this
    catches up on any that were missed (those read in the last ten minutes are left alone)."""
    waiting = list(
        ChangeRequest.objects.open()
        .exclude(pull__read_at__gte=clock.now() - RECENTLY_READ)
        .values_list("pk", flat=True)
    )
    for pk in waiting:
        pull_request_read.delay(pk)
    return len(waiting)
