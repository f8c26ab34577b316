"""The simulated production's deployer and telemetry: what the engine reaches when an environment's
deploy settings say `simulated` (registered by config.wiring only where the demo is installed)."""

from datetime import datetime

from demo import simulation
from integrations.telemetry import AwsTelemetry


class SimulatedDeployer:
    """The simulated production: the idle colour runs the version from now on."""

    def start(
        self, *, version: str, colour: str, target_group_arn: str, environment: str, change: str
    ) -> str:
        simulation.deploy(target_group_arn, version, environment)
        return ""

    def finished(self, ref: str) -> bool:
        return True


class SimulatedTelemetry(AwsTelemetry):
    """The simulated production: health and alarms as the simulation says each colour behaves,
    percentiles of the response times its traffic generator measured (moto reports every running
    target healthy, computes no percentiles and never evaluates an alarm); request and 5xx counts
    from CloudWatch as on AWS."""

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
