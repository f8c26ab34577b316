"""The deployment tests' production (a load balancer in moto, two colours, a repository)."""

from tests.deployments.conftest import alb, colours, production, ready, repo, rita  # noqa: F401 (fixtures)
