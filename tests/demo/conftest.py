"""The deployment tests' production (a load balancer in moto, two colours, a repository), judged
as the demo judges it, by the simulated telemetry."""

import pytest

from deployments.models import DeploySettings
from tests.deployments.conftest import (  # noqa: F401 (fixtures)
    alb,
    cloudwatch_percentiles,
    colours,
    production,
    ready,
    repo,
    rita,
)


@pytest.fixture
def judged_by():
    return DeploySettings.Telemetry.SIMULATED
