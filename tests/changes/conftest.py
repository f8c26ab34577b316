import pytest

from tests.factories import EnvironmentFactory, ServiceFactory


@pytest.fixture
def catalogue():
    """One environment and one service, for tests that file changes with the factory defaults."""
    EnvironmentFactory()
    ServiceFactory()
