"""Change request tasks: reminders to pending approvers, and the staging soak opening with time."""

from celery import shared_task

from changes import services
from changes.choices import ChangeStatus
from changes.models import ChangeRequest


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
    waiting = (
        ChangeRequest.objects.open()
        .exclude(build="")
        .filter(checklist__integration="staging_soak", checklist__done=False)
    )
    for change in waiting.only("pk").distinct().iterator():
        opened += services.soak_check(change=change)
    return opened
