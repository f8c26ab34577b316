"""Where a piece of work came from: request id, client address and user agent.

The request middleware sets it for a web request, the Celery hooks for a task (carrying the id of
the request that enqueued it), so the audit events and the log lines of one action share one id.
"""

import contextvars
import logging
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    ip: str | None = None
    user_agent: str = ""


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "greenlight_request_context", default=None
)

# An id a caller may hand us (X-Request-ID) is kept only when it looks like an id, so nothing
# odd reaches the logs or the audit trail through it.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def new_request_id(candidate: str | None = None) -> str:
    if candidate and _REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


def current() -> RequestContext | None:
    return _current.get()


@contextmanager
def bound(context: RequestContext):
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def bind(context: RequestContext | None) -> contextvars.Token:
    return _current.set(context)


def unbind(token: contextvars.Token) -> None:
    _current.reset(token)


class RequestContextLogFilter(logging.Filter):
    """Adds request_id to every log record ("-" outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        record.request_id = context.request_id if context else "-"
        return True
