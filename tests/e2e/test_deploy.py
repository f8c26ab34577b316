"""Deploy in Chromium: a release manager clicks Deploy on a ready change with a code, watches the
deployment page follow the engine to 25 % (updating by itself), pauses it, and rolls it back in one
click. The engine is advanced in this process (its worker's part), AWS is moto in this process."""

import pytest
from playwright.sync_api import expect

from deployments import engine
from deployments.models import Deployment
from tests.changes.conftest import repo  # noqa: F401 (fixtures)
from tests.deployments.conftest import (  # noqa: F401 (fixtures)
    alb,
    cloudwatch_percentiles,
    colours,
    judged_by,
    listener_weights,
    production,
    ready,
)
from tests.deployments.test_engine import run
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import UserFactory, otp_code, totp_device

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


@pytest.fixture
def rita(db):
    return UserFactory(username="rita", first_name="Rita", role="release_manager")


def test_deploy_watch_pause_and_roll_back(live_server, page, ready, rita, alb):  # noqa: F811
    sign_in(page, live_server, rita)
    page.goto(f"{live_server.url}/changes/{ready.pk}/")
    deploy = page.locator("#deploy")
    expect(deploy.get_by_role("button", name="Deploy to Production")).to_be_visible()
    deploy.get_by_label("Code").fill(otp_code(totp_device(rita)))
    deploy.get_by_role("button", name="Deploy to Production").click()
    expect(page.locator(".messages")).to_contain_text(f"{ready.number} is deploying to Production.")
    deployment = Deployment.objects.get(change=ready)
    assert page.url.endswith(f"/deployments/{deployment.pk}/")

    run(deployment, until=lambda d: d.applied_weight == 25, alb=alb)  # the worker's part
    stages = page.locator(".stages")
    expect(stages.locator(".stage.running")).to_contain_text("25 % on green")  # without a reload
    expect(page.locator(".page-head")).to_contain_text("v1.3.0 to Production")
    expect(page.locator(".page-head .badge")).to_contain_text("Shifting traffic")
    expect(stages.locator(".stage.passed", has_text="Smoke tests on green")).to_contain_text("GET /healthz")
    expect(page.locator(".weights")).to_contain_text("Blue 75 %")
    expect(page.locator(".weights")).to_contain_text("Green 25 %")
    screenshot(page, "deployment-at-25.png")

    steer = page.locator("form.control")
    steer.get_by_label("Code").fill(otp_code(totp_device(rita)))
    steer.get_by_role("button", name="Pause").click()
    expect(page.locator(".messages")).to_contain_text("Paused: the weights hold.")
    expect(page.locator(".page-head .badge")).to_contain_text("paused")

    back = page.locator("form", has=page.get_by_role("button", name="Roll back"))
    back.get_by_label("Reason").fill("Checkout looks slow on green")
    back.get_by_label("Code", exact=True).fill(otp_code(totp_device(rita)))
    back.get_by_role("button", name="Roll back").click()
    expect(page.locator(".messages")).to_contain_text("Rolling back")
    engine.advance(deployment.pk)
    page.reload()
    expect(page.locator(".page-head .badge")).to_contain_text("Rolled back")
    expect(page.locator(".stages .stage.passed").last).to_contain_text("Rollback to blue")
    expect(page.locator(".stages .stage.stopped")).to_contain_text("stopped by the rollback")
    expect(page.locator(".weights")).to_contain_text("Blue 100 %")
    assert listener_weights(alb) == {"green": 0, "blue": 100}
    screenshot(page, "deployment-rolled-back.png")
    assert not page.errors
