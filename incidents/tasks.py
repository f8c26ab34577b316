"""Incident tasks: the response timers and reminders (run by beat), the code revert an incident asks
for, the status page's updates e-mailed to its subscribers, and its unconfirmed subscriptions
forgotten (beat)."""

from celery import shared_task
from django.db import OperationalError

from incidents import services


@shared_task(name="incidents.escalate", ignore_result=True)
def incidents_escalate() -> list[str]:
    return services.incidents_escalate()


@shared_task(name="incidents.revert", bind=True, ignore_result=True, acks_late=True, max_retries=8)
def incident_revert_run(self, incident_id: int, actor_id: int) -> str:
    """The code revert an incident asked for; a repository that turned it away for now (a rate
    limit, the network) is tried again with backoff."""
    from changes.releases import RepositoryRefused
    from changes.tasks import repository_retry

    try:
        return services.incident_revert_run(incident_id, actor_id)
    except RepositoryRefused as refused:
        raise repository_retry(self, refused) from None


@shared_task(name="incidents.remind", ignore_result=True)
def postmortems_remind() -> int:
    return services.postmortems_remind()


@shared_task(
    name="incidents.status_update_send",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=10,
    max_retries=6,
)
def status_update_send(entry_id: int) -> int:
    """E-mails a public update of the status page to its confirmed subscribers (queued when the
    update commits); a second run sends nothing again."""
    from incidents import status_subscriptions

    return status_subscriptions.status_update_send(entry_id)


@shared_task(name="incidents.status_subscribers_purge", ignore_result=True)
def status_subscribers_purge() -> int:
    """Forgets the status page subscriptions never confirmed (beat runs it daily)."""
    from incidents import status_subscriptions

    return status_subscriptions.status_subscribers_purge()
