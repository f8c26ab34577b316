"""What `make demo` shows, in Chromium against the simulated production: a release manager deploys
a ready change and watches the live page follow it 0 → 25 → 50 → 100 %, then monitored and
completed, without a reload; flips the bad-release switch, takes the next free slot for the next
change, deploys it, and watches the gate fail at 25 % and the rollback happen by itself.

Everything runs as in the demo: AWS is a moto server, blue and green are the simulator's HTTP
services, users' traffic is split by the listener's weights and published to CloudWatch, and a real
Celery worker process carries the deployments."""

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from changes.models import StagingRun
from demo import simulation, simulator
from deployments.models import Deployment, DeploySettings
from integrations.aws import Aws
from portal import clock
from tests.changes.conftest import commit, git, repo  # noqa: F401 (fixtures)
from tests.conftest import start_worker, stop_worker
from tests.deployments.conftest import (  # noqa: F401 (fixtures)
    AWS_CREDENTIALS,
    REGION,
    listener_weights,
    moto_server_alb,
    production,
    ready,
    rita,
)
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import approved_change, otp_code, totp_device


@pytest.fixture
def judged_by():
    """The worker process judges the steps: by the simulated telemetry, as in the demo."""
    return DeploySettings.Telemetry.SIMULATED


pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


@pytest.fixture
def alb(moto_server_alb):  # noqa: F811
    return moto_server_alb


@pytest.fixture
def colours(alb):
    """Blue and green as the demo serves them, answering as the simulation says."""
    servers = {colour: simulator.serve_colour(colour, alb[colour]) for colour in ("blue", "green")}
    for server in servers.values():
        server.url = f"http://127.0.0.1:{server.server_address[1]}"
    simulation.behave(alb["blue"], version="v1.2.0")
    yield servers
    for server in servers.values():
        server.shutdown()


@pytest.fixture
def traffic(alb, colours):
    """Users: 60 requests a second split by the listener's weights, published every second: at
    25 % a 2-second round sees about 30 on green, well over the 10 it needs on a slow machine."""
    aws = Aws(region=REGION, endpoint_url=settings.AWS_ENDPOINT_URL)
    users = simulator.Traffic(
        aws, listener_arn=alb["listener"], colours={c: (alb[c], s.url) for c, s in colours.items()}, rate=60
    )
    stop = threading.Event()
    thread = threading.Thread(target=users.run, args=(stop,), kwargs={"publish_every": 1.0}, daemon=True)
    thread.start()
    yield users
    stop.set()
    thread.join(timeout=10)


@pytest.fixture
def worker(tmp_path, repo, alb, own_queue):  # noqa: F811
    process = start_worker(
        tmp_path / "worker.log",
        **own_queue,
        **AWS_CREDENTIALS,
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=settings.AWS_ENDPOINT_URL,
        GIT_REPOSITORY_PATH=str(repo),
    )
    yield process
    stop_worker(process)
    for row in Deployment.objects.all():  # shown when the test fails
        print(f"deployment {row.pk}: {row.state}, {row.applied_weight} %, {row.error}")
    print((tmp_path / "worker.log").read_text()[-4000:])


def deploy(page, change, person) -> None:
    deploy = page.locator("#deploy")
    deploy.get_by_label("Code").fill(otp_code(totp_device(person)))
    deploy.get_by_role("button", name="Deploy to Production").click()
    expect(page.locator(".messages")).to_contain_text(f"{change.number} is deploying to Production.")


@pytest.mark.usefixtures("traffic", "worker")
def test_a_good_release_lands_and_a_bad_one_rolls_back(live_server, page, ready, alb, rita):  # noqa: F811
    environment, repository = ready.environment, Path(settings.GIT_REPOSITORY_PATH)
    DeploySettings.objects.update(
        bake_seconds=4,
        analysis_seconds=2,
        min_requests=10,
        verify_seconds=4,
        monitor_seconds=4,
        monitor_interval_seconds=2,
        health_timeout_seconds=60,
    )
    sign_in(page, live_server, rita)

    page.goto(f"{live_server.url}/changes/{ready.pk}/")
    deploy(page, ready, rita)
    weights, head = page.locator(".weights"), page.locator(".page-head .badge")
    for step in (25, 50, 100):  # the page follows the worker by itself
        expect(weights).to_contain_text(f"Green {step} %", timeout=60_000)
        if step == 25:
            expect(page.locator(".stages .stage.passed", has_text="Smoke tests on green")).to_be_visible()
            screenshot(page, "demo-deployment-at-25.png")
    expect(head).to_contain_text("Monitoring", timeout=30_000)
    expect(page.locator(".monitoring")).to_contain_text("Live on green since")
    expect(head).to_contain_text("Succeeded", timeout=60_000)
    expect(page.locator(".stages .stage.passed", has_text="Monitoring of v1.3.0 on green")).to_be_visible()
    expect(page.locator(".stages svg.sparkline").first).to_be_visible()  # the last minutes, drawn
    screenshot(page, "demo-deployment-succeeded.png")
    assert listener_weights(alb) == {"green": 100, "blue": 0}
    ready.refresh_from_db()
    assert ready.status == "completed"

    # The next change: developers pushed more to staging, it soaked, it was approved.
    git(repository, "checkout", "--quiet", "staging")
    commit(repository, "previews.txt", "sharper\n", "Sharper render previews")
    git(repository, "checkout", "--quiet", "main")
    following = approved_change(
        ready.requester, environment, title="Sharper render previews", version_bump="patch"
    )
    staging = environment.__class__.objects.get(name="staging")
    for result in ("deployed", "green"):  # CI's reports of the approved commit, two hours ago
        StagingRun.objects.create(
            environment=staging,
            commit=following.approved_commit,
            version="v-build-8",
            result=result,
            at=clock.now() - timedelta(hours=2),
        )

    page.goto(f"{live_server.url}/environments/")
    switch = page.locator("form.bad-release")
    switch.get_by_label("The next release deployed here is").select_option(label=simulation.FAULTS["errors"])
    switch.get_by_role("button", name="Set").click()
    expect(page.locator(".messages")).to_contain_text("The next release deployed to Production is: Errors")
    expect(page.locator(".simulation")).to_contain_text("Green runs v1.3.0")
    screenshot(page, "demo-bad-release-switch.png")

    page.goto(f"{live_server.url}/changes/{following.pk}/")
    page.locator("form.next-slot").get_by_role("button", name="Take it").click()
    expect(page.locator(".messages")).to_contain_text(
        f"{following.number} is scheduled into the next free slot."
    )
    deploy(page, following, rita)
    expect(head).to_contain_text("Rolled back", timeout=90_000)
    failed = page.locator(".stages .stage.failed", has_text="25 % on blue")
    expect(failed).to_contain_text("5xx error")  # the rate, or errors enough to fail before the rate
    expect(page.locator(".weights")).to_contain_text("Green 100 %")
    expect(page.locator(".stages .stage.passed").last).to_contain_text("Rollback to green")
    screenshot(page, "demo-bad-release-rolled-back.png")
    deployment = Deployment.objects.get(change=following)
    assert deployment.error.startswith("Rolled back: At 25 %: 5xx error")
    assert listener_weights(alb) == {"green": 100, "blue": 0}
    page.goto(f"{live_server.url}/releases/")
    expect(page.locator(".release-live")).to_contain_text("v1.3.0")
    screenshot(page, "demo-releases.png")
    assert not page.errors
