"""The installation's queues, by kind.

Queues are named after the installation's default queue (CELERY_QUEUE, "celery"): the default one
carries periodic jobs and reads, and `<default>.deployments`, `<default>.rollbacks` and
`<default>.notifications` the rest, so a flood of notifications never waits in front of a rollback.
A worker reads all four unless told otherwise (`celery worker -Q celery.rollbacks`). Which task goes
to which queue is the Celery application's routing (config.celery).
"""

from celery import current_app

DEPLOYMENTS, ROLLBACKS, NOTIFICATIONS = "deployments", "rollbacks", "notifications"
KINDS = ("", DEPLOYMENTS, ROLLBACKS, NOTIFICATIONS)  # "": the default queue


def queue(kind: str) -> str:
    """The name of one of the installation's queues, read when sent (a test may change the default)."""
    default = current_app.conf.task_default_queue
    return f"{default}.{kind}" if kind else default
