"""Whether the portal's background processes are alive, for the pages, /readyz and /metrics.

Each Celery worker stamps, every few seconds and from a thread of its own (not a task, so a worker
busy with a long queue still shows as alive), each queue it reads: a queue that no worker has read
for a minute is named, with what waits in it. Beat's schedule runs `portal.beat_heartbeat`, which
stamps beat's time: it goes stale when beat stops.
"""

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache

from portal import clock

logger = logging.getLogger(__name__)

BEAT = "beat"
BEAT_KEY = "heartbeat:beat"
EVERY_SECONDS = 15
# A process not seen for this long is named on every page: beat's period four times over.
SILENT_AFTER = timedelta(minutes=1)
# What waits while no worker reads a queue, by the queue's kind (portal.queues).
_WAITING = {
    "": "periodic jobs and reads of pull requests wait",
    "deployments": "deployments do not advance",
    "rollbacks": "rollbacks do not run",
    "notifications": "notifications are not sent",
}

_started = time.monotonic()


def queue_key(queue: str) -> str:
    return f"heartbeat:queue:{queue}"


@dataclass(frozen=True)
class Process:
    name: str  # a queue's name, or "beat"
    last_seen: datetime | None
    silent: bool
    quiet_for: timedelta | None = None  # since it was last seen

    def as_dict(self) -> dict:
        return {"last_seen": self.last_seen.isoformat() if self.last_seen else None, "silent": self.silent}

    def when(self) -> str:
        if self.last_seen is None:
            return "since this server started"
        minutes = int(self.quiet_for.total_seconds() // 60)
        return f"for {minutes} minute{'s' if minutes != 1 else ''}"


def stamp(key: str) -> str:
    moment = clock.now().isoformat()
    cache.set(key, moment, timeout=None)
    return moment


def stamp_queues(queues: Iterable[str]) -> str:
    moment = clock.now().isoformat()
    cache.set_many({queue_key(q): moment for q in queues}, timeout=None)
    return moment


def queues() -> dict[str, str]:
    """The installation's queues (portal.queues) and the kind of each, the default one first."""
    from portal.queues import KINDS, queue

    return {queue(kind): kind for kind in KINDS}


def processes() -> list[Process]:
    """Each queue (seen when a worker reading it last stamped) and beat, with whether that is too
    long ago. One never seen counts as silent once this web process has itself run for a minute (a
    demo just started is not alarming yet); an unreachable cache tells nothing and names nobody."""
    names = [*queues(), BEAT]
    keys = {name: BEAT_KEY if name == BEAT else queue_key(name) for name in names}
    try:
        stamps = cache.get_many(list(keys.values()))
    except Exception:  # the cache may be the same Redis that is down; /readyz names that
        return []
    now = clock.now()
    up = timedelta(seconds=time.monotonic() - _started)
    found = []
    for name in names:
        if keys[name] in stamps:
            last = datetime.fromisoformat(stamps[keys[name]])
            found.append(Process(name, last, now - last > SILENT_AFTER, now - last))
        else:
            found.append(Process(name, None, up > SILENT_AFTER))
    return found


def warnings(found: list[Process] | None = None) -> list[str]:
    """What every page says of silent processes: one line when no worker reads any queue."""
    found = processes() if found is None else found
    silent = [p for p in found if p.silent]
    said = []
    queues_silent = [p for p in silent if p.name != BEAT]
    if queues_silent and len(queues_silent) == len([p for p in found if p.name != BEAT]):
        said.append(
            f"No Celery worker has been seen {queues_silent[0].when()}: deployments do not advance, "
            "rollbacks do not run and notifications are not sent."
        )
    else:
        kinds = queues()
        for process in queues_silent:
            kind = kinds.get(process.name, "")
            said.append(
                f"No Celery worker has read the queue {process.name} {process.when()}: {_WAITING[kind]}."
            )
    said += [
        f"Celery beat has not been seen {p.when()}: scheduled jobs (the deployment reconciler, "
        "reminders, escalations) do not run."
        for p in silent
        if p.name == BEAT
    ]
    return said


class WorkerHeartbeat:
    """The thread a worker runs beside its pool (see config.celery), stamping the queues it reads."""

    def __init__(self, queues: Iterable[str], every: float = EVERY_SECONDS):
        self.queues = list(queues)
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="greenlight-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                stamp_queues(self.queues)
            except Exception as exc:  # the broker's Redis is down: say so, and keep trying
                logger.warning("worker heartbeat not written: %s", exc)
            self._stop.wait(self.every)
