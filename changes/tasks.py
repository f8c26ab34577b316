"""Change request tasks: reminders to pending approvers."""

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
