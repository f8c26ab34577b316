import pytest

from tests.fakes import FakePagerDuty


@pytest.fixture
def pagerduty():
    fake = FakePagerDuty()
    yield fake
    fake.close()
