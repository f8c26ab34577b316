"""The outside world one deployment touches: AWS (the load balancer's weights, the database
snapshot), what its steps are judged by (a Telemetry) and who puts a version on the idle colour (a
Deployer). The engine speaks to them through the interfaces below; which implementation an
environment uses is its deploy settings' choice, looked up here. The product's own are the
integrations' (a webhook, GitHub Actions, CloudWatch); config.wiring adds the demo's simulated
ones where the demo is installed."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.conf import settings

from deployments.models import DeploySettings
from integrations.aws import Aws, Counts
from integrations.deployers import DeployError, GitHubActionsDeployer, WebhookDeployer
from integrations.telemetry import AwsTelemetry


class Deployer(Protocol):
    """Asked once to deploy (`start` returns what it started, to follow), then whether it is done
    (`finished`: False while it runs; a DeployError when it failed)."""

    def start(
        self, *, version: str, colour: str, target_group_arn: str, environment: str, change: str
    ) -> str: ...

    def finished(self, ref: str) -> bool: ...


class Telemetry(Protocol):
    """What a step is judged by: target health, request and 5xx counts, latency percentiles, alarms."""

    def target_health(self, target_group_arn: str) -> list[tuple[str, str, str]]: ...

    def counts(self, target_group_arn: str, start: datetime, end: datetime, period: int) -> Counts: ...

    def percentiles(
        self, target_group_arn: str, start: datetime, end: datetime, period: int
    ) -> dict[str, float | None]:
        """p95 and p99 in milliseconds, None where there is no data yet."""
        ...

    def alarms_firing(self, names: list[str], target_group_arn: str) -> list[str]: ...


DeployerFactory = Callable[[DeploySettings], Deployer]
TelemetryFactory = Callable[[Aws, DeploySettings], Telemetry]


def _github_actions(deploy: DeploySettings) -> Deployer:
    return GitHubActionsDeployer(
        deploy.github_workflow, ref=deploy.github_workflow_ref or deploy.environment.branch
    )


_DEPLOYERS: dict[str, DeployerFactory] = {
    DeploySettings.Deployer.WEBHOOK: lambda deploy: WebhookDeployer(
        deploy.deployer_url, deploy.deployer_secret
    ),
    DeploySettings.Deployer.GITHUB_ACTIONS: _github_actions,
}
_TELEMETRIES: dict[str, TelemetryFactory] = {
    DeploySettings.Telemetry.CLOUDWATCH: lambda aws, deploy: AwsTelemetry(
        aws, listener_arn=deploy.listener_arn
    ),
}


def deployer_register(kind: str, factory: DeployerFactory) -> None:
    _DEPLOYERS[kind] = factory


def telemetry_register(kind: str, factory: TelemetryFactory) -> None:
    _TELEMETRIES[kind] = factory


@dataclass
class Outside:
    """The world one deployment touches."""

    aws: Aws
    telemetry: Telemetry
    deployer: Deployer


def outside_for(deploy: DeploySettings) -> Outside:
    """The world of the environment's deploy settings; a deployer or telemetry this installation
    does not have (the demo's simulated ones, outside the demo) stops the deployment in words."""
    for kind, known, what in (
        (deploy.deployer, _DEPLOYERS, "deployer"),
        (deploy.telemetry, _TELEMETRIES, "telemetry"),
    ):
        if kind not in known:
            raise DeployError(
                f"The {what} {kind!r} of {deploy.environment}'s deploy settings is not available here "
                f"(this installation has {', '.join(sorted(known))}): choose one of them."
            )
    aws = Aws(
        # AWS_REGION has a default: never unset, whatever its type says.
        region=deploy.aws_region or settings.AWS_REGION,
        role_arn=deploy.role_arn,
        endpoint_url=settings.AWS_ENDPOINT_URL,
    )
    return Outside(
        aws=aws,
        telemetry=_TELEMETRIES[deploy.telemetry](aws, deploy),
        deployer=_DEPLOYERS[deploy.deployer](deploy),
    )
