"""Who puts a version on the idle colour. The engine asks once, then waits for every target of
the idle colour to be healthy: a webhook your pipeline answers, or the simulated production.
Adapters only: no database here."""

import requests

from deployments import simulation


class DeployError(Exception):
    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class WebhookDeployer:
    """POSTs {version, colour, target_group_arn, environment, change} to your pipeline, which
    deploys the version to that colour's targets."""

    def __init__(self, url: str):
        self.url = url

    def start(
        self, *, version: str, colour: str, target_group_arn: str, environment: str, change: str
    ) -> None:
        payload = {
            "version": version,
            "colour": colour,
            "target_group_arn": target_group_arn,
            "environment": environment,
            "change": change,
        }
        try:
            response = requests.post(self.url, json=payload, timeout=10)
        except requests.RequestException as error:
            raise DeployError(
                f"The deployer at {self.url} could not be reached: {error}", transient=True
            ) from None
        if response.status_code >= 500:
            raise DeployError(f"The deployer at {self.url} answered {response.status_code}.", transient=True)
        if response.status_code >= 400:
            raise DeployError(
                f"The deployer at {self.url} refused the deployment ({response.status_code}): "
                f"{response.text[:300]}"
            )


class SimulatedDeployer:
    """The simulated production: the idle colour runs the version from now on."""

    def start(
        self, *, version: str, colour: str, target_group_arn: str, environment: str, change: str
    ) -> None:
        simulation.behave(target_group_arn, version=version)
