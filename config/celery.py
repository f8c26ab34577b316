"""The Celery application: tasks carry the request id of whoever enqueued them; the engine's
steps, rollbacks and notifications each go to a queue of their own (portal.queues); every worker
stamps a heartbeat.
"""

import logging
import os
import time

from celery import Celery, bootsteps, signals
from kombu import Queue

from portal.queues import DEPLOYMENTS, KINDS, NOTIFICATIONS, ROLLBACKS, queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("greenlight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_ROUTES = {
    "deployments.advance": DEPLOYMENTS,
    "incidents.revert": ROLLBACKS,
    "portal.notification_deliver": NOTIFICATIONS,
    "incidents.status_update_send": NOTIFICATIONS,
}


def route(name, args, kwargs, options, task=None, **kw):
    kind = _ROUTES.get(name)
    return {"queue": queue(kind)} if kind else None


app.conf.task_routes = (route,)
app.conf.task_queues = [Queue(queue(kind)) for kind in KINDS]


class Heartbeat(bootsteps.StartStopStep):
    """Stamps the queues the worker reads, from a thread of its main process (portal.heartbeat)."""

    def __init__(self, worker, **kwargs):
        self.beat = None

    def start(self, worker):
        from portal.heartbeat import WorkerHeartbeat

        self.beat = WorkerHeartbeat(list(worker.app.amqp.queues.consume_from))
        self.beat.start()

    def stop(self, worker):
        if self.beat is not None:
            self.beat.stop()


app.steps["worker"].add(Heartbeat)

_REQUEST_ID_HEADER = "greenlight_request_id"
_SENT_AT_HEADER = "greenlight_sent_at"


@signals.before_task_publish.connect
def _stamp_request_id(headers=None, **kwargs):
    from portal import context

    if headers is None:
        return
    headers[_SENT_AT_HEADER] = time.time()  # for the queue's latency (portal.metrics)
    current = context.current()
    if current is not None:
        headers[_REQUEST_ID_HEADER] = current.request_id


def _header(task, name: str):
    return getattr(task.request, name, None) or (task.request.headers or {}).get(name)


@signals.task_prerun.connect
def _task_starts(task=None, **kwargs):
    from django.db import close_old_connections

    from portal import context

    if task is None:
        return
    if not getattr(task.request, "is_eager", False):
        # As before a request: a connection past its age is closed, a kept one checked on first use.
        close_old_connections()
    _observe_wait(task)
    request_id = _header(task, _REQUEST_ID_HEADER)
    # Kept on this execution's request, not the shared task object, so concurrent runs of one task
    # under a thread pool each restore their own context.
    task.request.greenlight_context_token = context.bind(
        context.RequestContext(request_id=context.new_request_id(request_id))
    )


def _observe_wait(task) -> None:
    from portal import metrics

    waited = metrics.waited_since(_header(task, _SENT_AT_HEADER), task.request.eta)
    if waited is None:
        return
    queue = (task.request.delivery_info or {}).get("routing_key") or ""
    try:
        metrics.task_waited(queue, waited)
    except Exception as exc:  # a metric never stops a task (Redis may be down: the task retries later)
        logging.getLogger(__name__).warning("task latency not recorded: %s", exc)


@signals.task_postrun.connect
def _unbind_request_id(task=None, **kwargs):
    from portal import context

    token = getattr(task.request, "greenlight_context_token", None) if task is not None else None
    if token is not None:
        task.request.greenlight_context_token = None
        context.unbind(token)
