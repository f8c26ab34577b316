"""Sends replica-safe reads to the read replica (DATABASE_REPLICA_URL) when one is configured.

A read is replica-safe when the code doing it says so: `with replica_reads():` around a report or
a listing that may lag the primary by a moment. Everything else, and every write, goes to the
primary, so a service never reads a stale row it is about to change.
"""

import contextvars
from contextlib import contextmanager

from django.conf import settings

REPLICA = "replica"

_replica_ok: contextvars.ContextVar[bool] = contextvars.ContextVar("replica_ok", default=False)


@contextmanager
def replica_reads():
    token = _replica_ok.set(True)
    try:
        yield
    finally:
        _replica_ok.reset(token)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if _replica_ok.get() and replica_configured():
            return REPLICA
        return "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
