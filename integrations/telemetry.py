"""What a deployment step is judged by, as AWS tells it: the health of the new colour's targets
(ELBv2), its request and 5xx counts, latency percentiles and alarms (CloudWatch). One of the
sources a deployment's Telemetry may be (deployments.outside). Adapters only: no database here."""

from datetime import datetime

from integrations.aws import Aws, Counts


class AwsTelemetry:
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

    def percentiles(
        self, target_group_arn: str, start: datetime, end: datetime, period: int
    ) -> dict[str, float | None]:
        return self.aws.percentiles(
            listener_arn=self.listener_arn,
            target_group_arn=target_group_arn,
            start=start,
            end=end,
            period=period,
        )

    def alarms_firing(self, names: list[str], target_group_arn: str) -> list[str]:
        return self.aws.alarms_firing(names)
