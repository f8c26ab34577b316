"""The Celery application: tasks carry the request id of whoever enqueued them."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("greenlight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_REQUEST_ID_HEADER = "greenlight_request_id"


@signals.before_task_publish.connect
def _stamp_request_id(headers=None, **kwargs):
    from portal import context

    current = context.current()
    if headers is not None and current is not None:
        headers[_REQUEST_ID_HEADER] = current.request_id


@signals.task_prerun.connect
def _bind_request_id(task=None, **kwargs):
    from portal import context

    request_id = None
    if task is not None:
        request_id = getattr(task.request, _REQUEST_ID_HEADER, None) or (task.request.headers or {}).get(
            _REQUEST_ID_HEADER
        )
    if task is not None:
        # Kept on this execution's request, not the shared task object, so concurrent runs of
        # one task under a thread pool each restore their own context.
        task.request.greenlight_context_token = context.bind(
            context.RequestContext(request_id=context.new_request_id(request_id))
        )


@signals.task_postrun.connect
def _unbind_request_id(task=None, **kwargs):
    from portal import context

    token = getattr(task.request, "greenlight_context_token", None) if task is not None else None
    if token is not None:
        task.request.greenlight_context_token = None
        context.unbind(token)
