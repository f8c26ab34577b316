from datetime import time

import pytest

from changes import services
from tests.factories import ApprovalPolicyFactory, EnvironmentFactory, ServiceFactory


@pytest.fixture
def catalogue():
    """One environment and one service, for tests that file changes with the factory defaults."""
    EnvironmentFactory()
    ServiceFactory()


@pytest.fixture
def paris(release_manager):
    """Production in Paris: one approval, deploys Tuesday to Thursday 02:00-05:00 Paris time."""
    policy = ApprovalPolicyFactory(
        name="One approval", min_approvals=1, min_code_owner_approvals=0, required_sign_offs=[]
    )
    environment = EnvironmentFactory(
        name="paris", display_name="Paris", time_zone="Europe/Paris", approval_policy=policy
    )
    services.window_create(
        actor=release_manager,
        environment=environment,
        weekdays=[1, 2, 3],
        start_time=time(2),
        end_time=time(5),
    )
    return environment
