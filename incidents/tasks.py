"""Incident tasks: the response timers, run by beat."""

from celery import shared_task

from incidents import services


@shared_task(name="incidents.escalate", ignore_result=True)
def incidents_escalate() -> list[str]:
    return services.incidents_escalate()
