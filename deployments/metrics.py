"""The engine's series on /metrics: deployments ended by outcome and under way, rollbacks by who
asked, and how long each kind of stage takes (registered with the portal's registry by
config.wiring)."""

from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from deployments.models import Deployment, Stage

# Seconds: a stage is a bake of minutes or a smoke test of seconds.
STAGE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


class DeploymentCollector:
    """Read when scraped: three aggregate queries, whatever the history."""

    def collect(self):
        outcomes = CounterMetricFamily(
            "greenlight_deployments", "Deployments ended, by outcome.", labels=["environment", "outcome"]
        )
        running = GaugeMetricFamily(
            "greenlight_deployments_running", "Deployments under way.", labels=["state"]
        )
        rows = Deployment.objects.values("environment__name", "state").annotate(n=Count("pk"))
        for row in rows:
            if row["state"] in Deployment.ENDED:
                outcomes.add_metric([row["environment__name"], row["state"]], row["n"])
            else:
                running.add_metric([row["state"]], row["n"])
        yield outcomes
        yield running

        rollbacks = CounterMetricFamily(
            "greenlight_rollbacks",
            "Rollbacks begun, by who asked: the engine or a person.",
            labels=["trigger"],
        )
        asked = Deployment.objects.filter(rollback_requested=True).aggregate(
            automatic=Count("pk", filter=Q(rollback_by__isnull=True)),
            manual=Count("pk", filter=Q(rollback_by__isnull=False)),
        )
        for trigger, n in asked.items():
            rollbacks.add_metric([trigger], n)
        yield rollbacks

        yield self._stage_durations()

    @staticmethod
    def _stage_durations() -> HistogramMetricFamily:
        """Ended stages by kind, bucketed in the database (one query, whatever the history)."""
        duration = ExpressionWrapper(F("ended_at") - F("started_at"), output_field=DurationField())
        buckets = {
            f"le_{i}": Count("pk", filter=Q(duration__lte=timedelta(seconds=b)))
            for i, b in enumerate(STAGE_BUCKETS)
        }
        rows = (
            Stage.objects.filter(ended_at__isnull=False)
            .annotate(duration=duration)
            .values("kind")
            .annotate(total=Count("pk"), seconds=Sum("duration"), **buckets)
        )
        family = HistogramMetricFamily(
            "greenlight_stage_duration_seconds",
            "How long each ended stage of a deployment took.",
            labels=["kind"],
        )
        for row in rows:
            counts = [(str(float(b)), row[f"le_{i}"]) for i, b in enumerate(STAGE_BUCKETS)]
            counts.append(("+Inf", row["total"]))
            total_seconds = row["seconds"].total_seconds() if row["seconds"] is not None else 0.0
            family.add_metric([row["kind"]], counts, sum_value=total_seconds)
        return family
