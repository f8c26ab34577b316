"""A production to break: the load balancer in a moto server (tests/faults/outside.py) that real
Celery worker processes reach, blue and green answering smoke tests, a deploy pipeline, a
repository to release in, Slack, PagerDuty and a mail server counting what they receive, and users
whose response times the telemetry judges. `world` drives a deployment through it and checks the
end state that every fault must leave."""

import json
import os
import signal
from collections import Counter
from datetime import timedelta

import pytest
import requests

from demo import simulator
from deployments import services
from deployments.engine import LEASE
from deployments.models import Deployment, DeploySettings
from deployments.tasks import deployments_reconcile
from portal import clock
from portal.models import Notification
from portal.selectors import audit_chain_verify
from portal.services import NOTIFICATION_CLAIM_TIMEOUT
from portal.tasks import notifications_reclaim
from tests.changes.conftest import repo  # noqa: F401 (a fixture)
from tests.conftest import start_worker, stop_worker, wait_for
from tests.deployments.conftest import (  # noqa: F401 (fixtures)
    AWS_CREDENTIALS,
    REGION,
    listener_weights,
    production,
    ready,  # noqa: F811
    rita,
)
from tests.fakes import FakeMail, FakePagerDuty, FakeSlack
from tests.faults import outages, table
from tests.faults.outside import Aws, Colour, Gate, Pipeline, RepositoryHooks, Users

# Every stage of a deployment that went all the way, in order.
ALL_STAGES = [
    ("preflight", None),
    ("release", None),
    ("deploy", None),
    ("smoke", 0),
    ("traffic", 25),
    ("traffic", 50),
    ("traffic", 100),
    ("verify", 100),
    ("monitor", 100),
]
# What the change's status is once its deployment ended so.
CHANGE_STATUS = {
    Deployment.State.SUCCEEDED: "completed",
    Deployment.State.ROLLED_BACK: "rolled_back",
    Deployment.State.FAILED: "failed",
}


@pytest.fixture(autouse=True)
def _services_back():
    """Whatever a test stopped is running again after it (the test brings it back itself; this is
    for a test that failed half-way)."""
    yield
    outages.redis_started()
    outages.postgres_started()


@pytest.fixture
def gate():
    gate = Gate()
    yield gate
    gate.open()


@pytest.fixture
def moto(gate, settings, monkeypatch):
    for name, value in AWS_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    server = Aws(gate)
    # moto keeps its accounts in this process, shared by every server and mock: start empty.
    requests.post(f"{server.url}/moto-api/reset", timeout=10).raise_for_status()
    settings.AWS_REGION, settings.AWS_ENDPOINT_URL = REGION, server.url
    yield server
    server.close()


@pytest.fixture
def judged_by():
    """The engine runs in worker processes here, which no Stubber of the test's reaches: production
    is judged by the demo's simulated telemetry (health and counts from moto, percentiles from the
    simulation)."""
    return DeploySettings.Telemetry.SIMULATED


@pytest.fixture
def alb(moto):
    return simulator.build(endpoint_url=moto.url)


@pytest.fixture
def colours(gate):
    served = {colour: Colour(colour, gate) for colour in ("blue", "green")}
    yield served
    for colour in served.values():
        colour.close()


@pytest.fixture
def pipeline(gate):
    fake = Pipeline(gate)
    yield fake
    fake.close()


@pytest.fixture
def hooks(repo, gate):  # noqa: F811
    fake = RepositoryHooks(repo, gate)
    yield fake
    fake.close()


@pytest.fixture
def outside():
    """Slack, PagerDuty and a mail server, each keeping what it was sent."""
    slack, pagerduty, mail = FakeSlack(), FakePagerDuty(), FakeMail()
    with slack:
        yield {"slack": slack, "pagerduty": pagerduty, "mail": mail}
    pagerduty.close()
    mail.close()


@pytest.fixture
def users(alb):
    fake = Users(alb)
    yield fake
    fake.close()


class World:
    """One change deployed by real workers through the world above, and what a fault may not break."""

    def __init__(self, *, alb, moto, gate, pipeline, outside, users, change, person, env, logs, repository):
        self.alb, self.aws, self.gate, self.pipeline, self.users = alb, moto, gate, pipeline, users
        self.slack, self.pagerduty, self.mail = outside["slack"], outside["pagerduty"], outside["mail"]
        self.change, self.person, self.env, self.logs = change, person, env, logs
        self.repository = repository
        self.workers = []

    def settings(self, **fields) -> None:
        """Changes the environment's deploy settings (before the deployment starts)."""
        DeploySettings.objects.update(**fields)

    def worker(self):
        process = start_worker(self.logs / f"worker-{len(self.workers) + 1}.log", **self.env)
        self.workers.append(process)
        return process

    def kill(self, process) -> None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL

    def deploy(self) -> Deployment:
        return services.deploy(actor=self.person, change=self.change)

    def row(self, deployment: Deployment) -> Deployment:
        return Deployment.objects.get(pk=deployment.pk)

    def until_ended(self, deployment: Deployment, timeout: float = 90) -> Deployment:
        """Runs the reconciler every second, as beat does every 15 s, until the deployment ended."""

        def ended():
            deployments_reconcile.delay()
            return Deployment.objects.filter(pk=deployment.pk, ended_at__isnull=False).first()

        return wait_for(ended, timeout=timeout, interval=1.0)

    def taken_over(self, deployment: Deployment, *, later: timedelta = timedelta(0)) -> Deployment:
        """The dead worker's lease runs out (and `later` passes); a fresh worker and the reconciler
        carry the deployment to its end."""
        clock.shift(LEASE + timedelta(seconds=1) + later)
        self.worker()
        return self.until_ended(deployment)

    def notifications_settled(self) -> None:
        """Beat's reclaimer sends again what a lost task or a dead worker left unsent; then every
        notification has had its one delivery."""
        clock.shift(NOTIFICATION_CLAIM_TIMEOUT + timedelta(minutes=1))
        notifications_reclaim.delay()
        waiting = (Notification.Status.PENDING, Notification.Status.SENDING)
        wait_for(lambda: not Notification.objects.filter(status__in=waiting).exists(), timeout=30)

    def delivered(self) -> Counter:
        """What Slack, PagerDuty and the mail server received, one entry per message."""
        got = Counter()
        for post in self.slack.posts:
            got[("slack", post["channel"], _words(post["text"].split("\n")[0].strip("*")))] += 1
        for message in self.mail.messages:
            for address in message["to"]:
                got[("email", address, _words(message["subject"]))] += 1
        for event in self.pagerduty.events:
            got[("pagerduty", event["dedup_key"], event["event_action"])] += 1
        return got

    def consistent(self, deployment: Deployment) -> Deployment:
        """The deployment ended, one of its kind, and everything agrees with how it ended: the
        load balancer with the row, the live colour, the change, the stages, the audit chain, and
        each notification was delivered once. Returns the row."""
        deployment = self.row(deployment)
        assert deployment.ended_at is not None, (deployment.state, deployment.error)
        assert list(Deployment.objects.filter(change=self.change).values_list("pk", flat=True)) == [
            deployment.pk
        ]
        assert Deployment.running_in(deployment.environment_id) is None
        assert deployment.desired_weight == deployment.applied_weight
        on_load_balancer = {"blue": 0, "green": 0, **listener_weights(self.alb)}
        assert on_load_balancer == deployment.weights
        succeeded = deployment.state == Deployment.State.SUCCEEDED
        live = deployment.to_colour if succeeded else deployment.from_colour
        assert DeploySettings.objects.get(environment=deployment.environment).live_colour == live
        assert on_load_balancer[live] == 100
        self.change.refresh_from_db()
        assert self.change.status == CHANGE_STATUS[deployment.state]
        stages = [(s.kind, s.weight, s.state) for s in deployment.stages.all()]
        assert len({(kind, weight) for kind, weight, _ in stages}) == len(stages), stages  # each once
        if succeeded:
            assert stages == [(kind, weight, "passed") for kind, weight in ALL_STAGES]
        assert "running" not in {state for _, _, state in stages}, stages
        self._released_once(deployment)
        took_traffic = any(kind == "traffic" for kind, _, _ in stages)
        rolled_back_by_itself = deployment.state == Deployment.State.ROLLED_BACK and took_traffic
        assert deployment.incidents.count() == (1 if rolled_back_by_itself else 0)
        alerts = Notification.objects.filter(
            channel="slack",
            recipient=DeploySettings.objects.get().alert_channel,
            subject__startswith=self.change.number,
        )
        ended = f"{self.change.number} {deployment.get_state_display().lower()} in {deployment.environment}"
        said = [] if succeeded else [ended]
        assert [a.subject for a in alerts] == said  # told once; nothing said to be stuck or paused
        assert audit_chain_verify().ok
        self.notifications_settled()
        rows = Notification.objects.all()
        assert {n.status for n in rows} <= {Notification.Status.SENT}, [(n.subject, n.status) for n in rows]
        assert self.delivered() == Counter(_delivered_as(n) for n in rows)
        return deployment

    def _released_once(self, deployment: Deployment) -> None:
        """A release that was cut is one merge on the environment's branch, tagged once."""
        from changes.models import Release
        from tests.changes.conftest import git

        release = Release.objects.filter(change=self.change).first()
        merges = git(self.repository, "rev-list", "--merges", "v1.2.0..main").split()
        if deployment.stages.filter(kind="release", state="passed").exists():
            assert merges == [release.merge_commit]
            assert git(self.repository, "rev-parse", f"{release.version}^{{commit}}") == release.merge_commit
        else:
            assert merges == []

    def ended_as(self, case, deployment: Deployment) -> Deployment:
        """Checks the end (`consistent`), records how the deployment ended for README's table, and
        asserts that it is how the case's rules say it ends."""
        deployment = self.row(deployment)
        outcome = table.outcome_of(deployment)
        try:
            deployment = self.consistent(deployment)
        except AssertionError:
            table.record(case.fault, case.stage, f"{outcome}, inconsistent")
            raise
        table.record(case.fault, case.stage, outcome)
        assert outcome == case.outcome, deployment.error
        return deployment


def _words(text: str) -> str:
    return " ".join(text.split())


def _delivered_as(notification: Notification) -> tuple[str, str, str]:
    if notification.channel == Notification.Channel.PAGERDUTY:
        return ("pagerduty", notification.recipient, json.loads(notification.body)["event_action"])
    return (notification.channel, notification.recipient, _words(notification.subject))


@pytest.fixture
def world(
    own_queue,
    gate,
    moto,
    alb,
    colours,
    pipeline,
    hooks,
    outside,
    users,
    ready,  # noqa: F811
    rita,  # noqa: F811
    repo,  # noqa: F811
    tmp_path,  # noqa: F811
):
    """A ready change in production, deploy settings fast enough for real time (a second's bake
    per step, a second of verification and of monitoring) and judged on response times alone."""
    DeploySettings.objects.update(
        deployer=DeploySettings.Deployer.WEBHOOK,
        deployer_url=pipeline.url,
        deployer_secret="faults-pipeline-secret-0123456789abcdef",
        min_requests=0,
        bake_seconds=1,
        analysis_seconds=1,
        verify_seconds=1,
        monitor_seconds=1,
        monitor_interval_seconds=1,
        health_timeout_seconds=120,
    )
    env = {
        **own_queue,
        **AWS_CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto.url,
        "GIT_REPOSITORY_PATH": str(repo),
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_API_URL": outside["slack"].url,
        "PAGERDUTY_ROUTING_KEY": "test-routing-key",
        "PAGERDUTY_EVENTS_URL": outside["pagerduty"].url,
        "EMAIL_URL": outside["mail"].url,
    }
    built = World(
        alb=alb,
        moto=moto,
        gate=gate,
        pipeline=pipeline,
        outside=outside,
        users=users,
        change=ready,
        person=rita,
        env=env,
        logs=tmp_path,
        repository=repo,
    )
    yield built
    gate.open()
    for process in built.workers:
        if process.poll() is None:
            stop_worker(process)
    for row in Deployment.objects.all():  # shown when the test fails
        print(f"deployment {row.pk}: {row.state}, {row.applied_weight} %, {row.error} {row.regression}")
        print([(s.name, s.state, s.checks[-3:]) for s in row.stages.all()])
    for log in sorted(tmp_path.glob("worker-*.log")):
        print(f"--- {log.name}\n{log.read_text()[-3000:]}")
