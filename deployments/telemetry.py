"""What a deployment step is judged by: the health of the new colour's targets, its request and
5xx counts, its latency percentiles, and alarms. One interface, two sources: CloudWatch and the
load balancer on AWS, and the simulated production (whose counts still come from CloudWatch, where
its traffic generator publishes them). Adapters only: no database here."""

from datetime import datetime

from deployments import simulation
from deployments.aws import Aws, Counts


class Telemetry:
    """AWS's own word: ELBv2 target health, CloudWatch `AWS/ApplicationELB` metrics and alarms."""

    def __init__(self, aws: Aws, *, listener_arn: str):
        self.aws, self.listener_arn = aws, listener_arn

    def target_health(self, target_group_arn: str) -> list[tuple[str, str, str]]:
        return self.aws.target_health(target_group_arn)

    def counts(self, target_group_arn: str, start: datetime, end: datetime, period: int) -> Counts:
        return self.aws.counts(
            listener_arn=self.listener_arn,
            target_group_arn=target_group_arn,
            start=start,
            end=end,
            period=period,
        )

    def percentiles(self, target_group_arn: str, start: datetime, end: datetime, period: int) -> dict:
        return self.aws.percentiles(
            listener_arn=self.listener_arn,
            target_group_arn=target_group_arn,
            start=start,
            end=end,
            period=period,
        )

    def alarms_firing(self, names: list[str], target_group_arn: str) -> list[str]:
        return self.aws.alarms_firing(names)


class SimulatedTelemetry(Telemetry):
    """The simulated production: health and alarms as the simulation says each colour behaves,
    percentiles of the response times its traffic generator measured (moto reports every target
    healthy, computes no percentiles and never evaluates an alarm); request and 5xx counts from
    CloudWatch as on AWS."""

    def target_health(self, target_group_arn: str) -> list[tuple[str, str, str]]:
        behaviour = simulation.behaviour(target_group_arn)
        targets = super().target_health(target_group_arn) or [("simulated", "healthy", "")]
        if behaviour.healthy:
            return targets
        return [(target, "unhealthy", "Health checks failed") for target, _state, _reason in targets]

    def percentiles(self, target_group_arn: str, start: datetime, end: datetime, period: int) -> dict:
        return simulation.percentiles(target_group_arn, start, end)

    def alarms_firing(self, names: list[str], target_group_arn: str) -> list[str]:
        return sorted(set(names) & set(simulation.behaviour(target_group_arn).alarms))
