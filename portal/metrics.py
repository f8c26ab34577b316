"""What Greenlight tells Prometheus about itself at /metrics.

Requests, responses and database queries come from django-prometheus, counted by each process (and
summed over the machine's processes when PROMETHEUS_MULTIPROC_DIR is set, as in the demo). What the
engine, the notifications and the audit trail did is read from the database at each scrape, so every
web process tells the same totals whichever worker on whichever machine did the work, and a restart
loses nothing. How long tasks waited in each queue is kept in Redis: each worker adds the wait of
every task it starts to the queue's histogram there.
"""

import time

from django.conf import settings
from django.db.models import Count
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

# Seconds a task waits in its queue: milliseconds, or more when workers are busy.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LATENCY_KEY = "greenlight:metrics:task-latency:"
_LATENCY_QUEUES = "greenlight:metrics:task-latency-queues"

_redis = None


def _redis_client():
    global _redis
    if _redis is None and settings.REDIS_URL:
        import redis

        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _redis


def task_waited(queue: str, seconds: float) -> None:
    """A worker started a task that waited `seconds` in `queue` (since sent, or since its ETA)."""
    client = _redis_client()
    if client is None or not queue:
        return
    bucket = next((str(b) for b in LATENCY_BUCKETS if seconds <= b), "+Inf")
    key = _LATENCY_KEY + queue
    with client.pipeline(transaction=False) as pipe:
        pipe.sadd(_LATENCY_QUEUES, queue)
        pipe.hincrby(key, bucket, 1)
        pipe.hincrbyfloat(key, "sum", max(seconds, 0.0))
        pipe.execute()


class GreenlightCollector:
    """The portal's own series, read when scraped (a handful of aggregate queries)."""

    def collect(self):
        from portal import clock, heartbeat
        from portal.models import AuditEvent, Notification

        deliveries = CounterMetricFamily(
            "greenlight_notifications",
            "Notifications by channel and outcome (sent, logged only, failed; pending and sending wait).",
            labels=["channel", "status"],
        )
        for row in Notification.objects.values("channel", "status").annotate(n=Count("pk")):
            deliveries.add_metric([row["channel"], row["status"]], row["n"])
        yield deliveries

        yield CounterMetricFamily(
            "greenlight_audit_events", "Events appended to the audit trail.", value=AuditEvent.objects.count()
        )

        last_seen = GaugeMetricFamily(
            "greenlight_process_seen_seconds_ago",
            "Seconds since a worker last read the queue (or beat last ran); absent when never seen.",
            labels=["process"],
        )
        up = GaugeMetricFamily(
            "greenlight_process_up",
            "1 when a worker read the queue (or beat ran) within a minute.",
            labels=["process"],
        )
        now = clock.now()
        for process in heartbeat.processes():
            if process.last_seen is not None:
                last_seen.add_metric([process.name], (now - process.last_seen).total_seconds())
            up.add_metric([process.name], 1 if process.last_seen is not None and not process.silent else 0)
        yield last_seen
        yield up

        latency = self._task_latency()
        if latency is not None:
            yield latency

    @staticmethod
    def _task_latency() -> HistogramMetricFamily | None:
        client = _redis_client()
        if client is None:
            return None
        family = HistogramMetricFamily(
            "greenlight_task_latency_seconds",
            "How long tasks waited in each queue before a worker started them (from their ETA if later).",
            labels=["queue"],
        )
        try:
            queues = sorted(q.decode() for q in client.smembers(_LATENCY_QUEUES))
            with client.pipeline(transaction=False) as pipe:
                for queue in queues:
                    pipe.hgetall(_LATENCY_KEY + queue)
                stored = pipe.execute()
        except Exception:  # Redis down: the other series still answer; /readyz names the broker
            return None
        for queue, fields in zip(queues, stored, strict=True):
            fields = {k.decode(): v for k, v in fields.items()}
            cumulative, counts = 0, []
            for bound in (*(str(b) for b in LATENCY_BUCKETS), "+Inf"):
                cumulative += int(fields.get(bound, 0))
                counts.append((str(float(bound)) if bound != "+Inf" else "+Inf", cumulative))
            family.add_metric([queue], counts, sum_value=float(fields.get("sum", 0)))
        return family


registry = CollectorRegistry(auto_describe=False)
registry.register(GreenlightCollector())


def waited_since(sent_at: float | None, eta) -> float | None:
    """Seconds a task waited before it started: from its ETA when it had one, else from when it was
    sent. None when the message does not say (sent by an older release)."""
    start = None
    if eta:
        from datetime import datetime

        moment = eta if not isinstance(eta, str) else datetime.fromisoformat(eta)
        start = moment.timestamp()
    if sent_at is not None:
        start = max(start or 0.0, float(sent_at))
    return None if start is None else time.time() - start
