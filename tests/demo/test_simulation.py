"""The simulated production the demo runs: users' traffic split by the listener's weights and
published as the load balancer would (counts in CloudWatch, response times for the percentiles),
the colours answering as their release behaves, the bad-release switch (per environment, for the
next release only, audited, refused when malformed), and a deployment abandoned when its load
balancer is gone."""

import threading
from datetime import timedelta

import pytest
import requests

from demo import simulation, simulator
from deployments import services
from deployments.models import Deployment
from integrations.aws import Aws
from portal import clock
from portal.models import AuditEvent
from tests.conftest import client_for
from tests.deployments.conftest import REGION

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(alb):
    """Blue and green as the demo serves them, against the load balancer in moto."""
    servers = {colour: simulator.serve_colour(colour, alb[colour]) for colour in ("blue", "green")}
    yield {colour: f"http://127.0.0.1:{s.server_address[1]}" for colour, s in servers.items()}
    for server in servers.values():
        server.shutdown()


def test_traffic_follows_the_weights_and_is_published_as_the_load_balancer_would(alb, served):
    aws = Aws(region=REGION)
    aws.set_weights({alb["blue"]: 75, alb["green"]: 25}, listener_arn=alb["listener"])
    simulation.behave(alb["green"], version="v2.0.0", fault="errors")
    users = simulator.Traffic(
        aws, listener_arn=alb["listener"], colours={c: (alb[c], url) for c, url in served.items()}, rate=200
    )
    start = clock.now() - timedelta(seconds=1)
    assert users.tick() == {alb["blue"]: 75, alb["green"]: 25}
    users.pool.shutdown(wait=True)  # every request of that second answered
    users.publish()
    end = clock.now() + timedelta(seconds=1)

    blue, green = (
        aws.counts(listener_arn=alb["listener"], target_group_arn=alb[c], start=start, end=end, period=60)
        for c in ("blue", "green")
    )
    assert blue.requests + green.requests == 200
    assert 100 < blue.requests < 200 and 0 < green.requests < 100  # about three to one
    assert blue.errors == 0 and green.errors == green.requests // 5  # one in five fails on the bad release
    latency = simulation.percentiles(alb["green"], start, end)
    assert set(latency) == {"p95", "p99"} and 0 < latency["p95"] <= latency["p99"]


def test_counts_carry_the_second_they_were_measured_not_when_they_are_sent(alb, served):
    """The demo's clock may jump between a request and its count reaching CloudWatch: a bad
    release's last errors must not land in the next release's first step."""
    aws = Aws(region=REGION)
    aws.set_weights({alb["blue"]: 0, alb["green"]: 100}, listener_arn=alb["listener"])
    simulation.behave(alb["green"], version="v2.0.0", fault="errors")
    users = simulator.Traffic(
        aws, listener_arn=alb["listener"], colours={c: (alb[c], url) for c, url in served.items()}, rate=50
    )
    measured = clock.now()
    users.tick()
    users.pool.shutdown(wait=True)
    clock.shift(timedelta(days=2))  # the clock moves on before the counts are sent
    users.publish()

    def green(start, end):
        return aws.counts(
            listener_arn=alb["listener"], target_group_arn=alb["green"], start=start, end=end, period=60
        )

    then = green(measured - timedelta(seconds=1), measured + timedelta(seconds=3))
    now = green(clock.now() - timedelta(minutes=5), clock.now() + timedelta(minutes=1))
    assert (then.requests, then.errors) == (50, 10)
    assert (now.requests, now.errors) == (0, 0)


def test_a_colour_answers_with_its_release_and_its_health(alb, served):
    simulation.behave(alb["blue"], version="v1.4.0")
    assert requests.get(served["blue"] + "/", timeout=5).json() == {"colour": "blue", "version": "v1.4.0"}
    simulation.behave(alb["blue"], healthy=False)
    assert requests.get(served["blue"] + "/healthz", timeout=5).status_code == 503


def test_the_bad_release_switch_is_for_the_next_release_here_only(production, rita, alb):
    client = client_for(rita)
    response = client.post("/environments/production/simulation/", {"fault": "slow"})
    assert response.status_code == 302
    assert simulation.next_release_fault("production") == "slow"
    assert simulation.next_release_fault("staging") == ""
    event = AuditEvent.objects.get(action="simulation.next_release")
    assert (event.actor_id, event.before, event.after) == (rita.pk, {"fault": ""}, {"fault": "slow"})

    simulation.deploy(alb["green"], "v1.3.0", "production")  # the simulated deployer
    assert simulation.behaviour(alb["green"]).fault == "slow"
    simulation.deploy(alb["blue"], "v1.3.1", "production")  # the release after it is good again
    assert simulation.behaviour(alb["blue"]).fault == ""


@pytest.mark.parametrize("body", [{"fault": "broken"}, {}])
def test_a_malformed_switch_is_refused_with_the_choices(production, rita, body):
    response = client_for(rita).post("/environments/production/simulation/", body)
    assert response.status_code == 400
    assert "Say what the next release does" in response.content.decode()
    assert not AuditEvent.objects.filter(action="simulation.next_release").exists()


def test_only_those_who_deploy_flip_the_switch_and_only_in_a_simulated_production(
    production, developer, rita
):
    assert (
        client_for(developer).post("/environments/production/simulation/", {"fault": "slow"}).status_code
        == 403
    )
    production.deploy_settings.__class__.objects.update(telemetry="cloudwatch")
    assert client_for(rita).post("/environments/production/simulation/", {"fault": "slow"}).status_code == 404
    assert simulation.next_release_fault("production") == ""


def test_a_deployment_whose_load_balancer_is_gone_is_abandoned_by_a_policy_admin(
    ready, rita, policy_admin, alb
):
    from django.core.exceptions import PermissionDenied

    deployment = services.deploy(actor=rita, change=ready)
    with pytest.raises(PermissionDenied):
        services.deployment_abandon(actor=rita, deployment=deployment, reason="gone")
    services.deployment_abandon(actor=policy_admin, deployment=deployment, reason="The demo restarted.")
    deployment.refresh_from_db()
    assert (deployment.state, deployment.error) == (Deployment.State.FAILED, "Abandoned: The demo restarted.")
    assert deployment.ended_at is not None and Deployment.running_in(ready.environment_id) is None
    ready.refresh_from_db()
    assert ready.status == "failed"
    assert AuditEvent.objects.get(action="deployment.abandon").actor_id == policy_admin.pk
    with pytest.raises(services.DeployRefused, match="has ended"):
        services.deployment_abandon(actor=policy_admin, deployment=deployment, reason="again")


def test_the_traffic_runs_until_stopped(alb, served):
    aws = Aws(region=REGION)
    users = simulator.Traffic(
        aws, listener_arn=alb["listener"], colours={c: (alb[c], url) for c, url in served.items()}, rate=5
    )
    stop = threading.Event()
    thread = threading.Thread(target=users.run, args=(stop,), kwargs={"publish_every": 0.5})
    thread.start()
    stop.wait(2.5)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert simulation.percentiles(alb["blue"], clock.now() - timedelta(minutes=1), clock.now())
