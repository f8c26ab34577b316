"""The GitHub Actions deployer: the engine dispatches the deploy workflow once with the version and
the colour, waits while its run is queued and running, and goes on to health and smoke tests once
it succeeded; a run that fails stops the deployment with the run's address in the evidence; GitHub
out of reach while the run is followed is waited out without a second dispatch; a dispatch GitHub
refuses is said in words. Against a local GitHub (tests/github_server.py) over a real repository."""

import time
from datetime import timedelta

import pytest

from deployments import engine, services
from deployments.models import Deployment, DeploySettings, Stage
from integrations.deployers import DeployError, GitHubActionsDeployer
from integrations.scm import GitHub
from portal import clock
from tests.conftest import verified_login
from tests.deployments.conftest import listener_weights
from tests.deployments.test_engine import run
from tests.factories import EnvironmentFactory
from tests.github_server import DEFAULT_PERMISSIONS, FakeGitHub

pytestmark = pytest.mark.django_db

WORKFLOW = """\
name: Deploy
run-name: Deploy ${{ inputs.version }} to ${{ inputs.colour }} (${{ inputs.change }})
on:
  workflow_dispatch:
    inputs:
      version: {required: true, type: string}
      colour: {required: true, type: choice, options: [blue, green]}
      environment: {required: true, type: string}
      change: {required: true, type: string}
jobs:
  deploy:
    runs-on: ubuntu-latest
    environment: ${{ inputs.environment }}
    steps:
      - run: ./deploy "${{ inputs.version }}" "${{ inputs.colour }}"
"""


@pytest.fixture
def github(repo):
    """GitHub for acme/shop over `repo`, with the deploy workflow on main."""
    with FakeGitHub(repo_path=repo, full_name="acme/shop") as server:
        server.push_commit("main", {".github/workflows/deploy.yml": WORKFLOW}, "Deploy with Actions")
        yield server


@pytest.fixture
def actions(production, github, settings):
    """Production deployed by the workflow deploy.yml of the repository on GitHub (where the
    release is cut too)."""
    settings.GITHUB_REPOSITORY, settings.GITHUB_TOKEN = "acme/shop", "good-token"
    settings.GITHUB_API_URL, settings.GIT_REPOSITORY_PATH = github.url, None
    DeploySettings.objects.filter(environment=production).update(
        deployer=DeploySettings.Deployer.GITHUB_ACTIONS, github_workflow="deploy.yml"
    )
    return github


@pytest.fixture
def change(actions, ready):
    """The ready change, its pull request read from GitHub (as the deploy gates want it)."""
    from changes import releases

    scm = GitHub("acme/shop", token="good-token", api_url=actions.url, pause_between_writes=None)
    releases.pull_request_read(change=ready, scm=scm)
    return ready


def dispatches(server) -> int:
    return sum(1 for method, path in server.requests if method == "POST" and "/dispatches" in path)


def follow(deployment: Deployment, times: int = 3) -> Deployment:
    """The engine looks at the deployment `times` more, as the run's minutes pass."""
    for _ in range(times):
        clock.shift(timedelta(seconds=engine.advance(deployment.pk) or 0))
    deployment.refresh_from_db()
    return deployment


def dispatched(deployment: Deployment) -> Deployment:
    return run(deployment, until=lambda d: d.deployer_ref)


def deployer_check(deployment: Deployment) -> dict:
    stage = deployment.stages.get(kind=Stage.Kind.DEPLOY)
    return next(c for c in stage.checks if c["name"] == "Deployer")


# Through the engine.


def test_the_workflow_is_dispatched_once_and_followed_until_it_succeeds(actions, change, rita, alb):
    deployment = dispatched(services.deploy(actor=rita, change=change))
    [started] = actions.runs
    assert started["inputs"] == {
        "version": "v1.3.0",
        "colour": "green",
        "environment": "production",
        "change": change.number,
    }
    assert started["ref"] == "main" and started["title"] == f"Deploy v1.3.0 to green ({change.number})"
    url = f"https://github.example/acme/shop/actions/runs/{started['id']}"
    assert deployment.deployer_ref == url
    check = deployer_check(deployment)
    assert check["ok"] is None and check["detail"] == f"{url} deploys to green"

    deployment = follow(deployment)  # queued
    assert deployment.state == Deployment.State.DEPLOYING and deployment.error == ""
    actions.move_run(started["id"])
    deployment = follow(deployment)  # running
    assert deployment.state == Deployment.State.DEPLOYING
    assert deployment.stages.get(kind=Stage.Kind.DEPLOY).state == Stage.State.RUNNING

    actions.move_run(started["id"], "completed", "success")
    deployment = run(deployment, until=lambda d: d.state == Deployment.State.SHIFTING, alb=alb)
    stages = list(deployment.stages.values_list("name", "state"))
    assert stages[2:4] == [("Deploy v1.3.0 to green", "passed"), ("Smoke tests on green (0 %)", "passed")]
    check = deployer_check(deployment)
    assert check["ok"] is True and check["detail"] == f"{url} succeeded"
    assert dispatches(actions) == 1 and len(actions.runs) == 1


def test_a_failed_run_fails_the_deploy_stage_with_its_address_and_rolls_back(actions, change, rita, alb):
    deployment = dispatched(services.deploy(actor=rita, change=change))
    [started] = actions.runs
    actions.move_run(started["id"], "completed", "failure")
    deployment = run(deployment, alb=alb)

    url = f"https://github.example/acme/shop/actions/runs/{started['id']}"
    said = f"The deploy workflow run {url} failed: the version was not deployed. Its log on GitHub says why."
    assert deployment.state == Deployment.State.ROLLED_BACK and deployment.error == f"Rolled back: {said}"
    stage = deployment.stages.get(kind=Stage.Kind.DEPLOY)
    assert stage.state == Stage.State.FAILED and stage.message == said
    check = deployer_check(deployment)
    assert check["ok"] is False and check["detail"] == said
    assert listener_weights(alb) == {"blue": 100}  # traffic never moved
    assert not deployment.stages.filter(kind=Stage.Kind.SMOKE).exists()
    assert dispatches(actions) == 1


@pytest.mark.parametrize(
    ("trouble", "says"),
    [
        ("dropped", "GitHub could not be reached at {url} to read the workflow run (ConnectionError)"),
        ("rate_limited", "GitHub's rate limit for this token is used up until"),
    ],
    ids=["dropped", "rate-limited"],
)
def test_github_out_of_reach_while_the_run_is_followed_is_waited_out_without_a_second_dispatch(
    actions, change, rita, alb, trouble, says
):
    deployment = dispatched(services.deploy(actor=rita, change=change))
    [started] = actions.runs
    if trouble == "dropped":
        actions.drop_connections = 2
    else:
        actions.rate_limited_until = int(time.time()) + 3600
    for attempt in (1, 2):
        engine.advance(deployment.pk)
        deployment.refresh_from_db()
        assert deployment.state == Deployment.State.DEPLOYING and deployment.attempts == attempt
        assert deployment.error.startswith(says.format(url=actions.url))

    actions.drop_connections, actions.rate_limited_until = 0, None
    actions.move_run(started["id"], "completed", "success")
    deployment = run(deployment, until=lambda d: d.state == Deployment.State.SHIFTING, alb=alb)
    assert deployment.attempts == 0 and deployment.error == ""
    assert dispatches(actions) == 1 and len(actions.runs) == 1


def test_a_workflow_github_does_not_know_stops_the_deployment_in_words(
    actions, production, change, rita, alb
):
    DeploySettings.objects.filter(environment=production).update(github_workflow="missing.yml")
    deployment = run(services.deploy(actor=rita, change=change), alb=alb)
    assert deployment.state == Deployment.State.ROLLED_BACK
    assert deployment.error == (
        "Rolled back: GitHub has no workflow missing.yml in acme/shop: name its file in .github/workflows "
        "(deploy.yml) or its id, on the default branch."
    )
    assert actions.runs == [] and listener_weights(alb) == {"blue": 100}


# The deployer against GitHub.


def deployer(server, workflow: str = "deploy.yml", ref: str = "main", token: str = "good-token"):
    github = GitHub("acme/shop", token=token, api_url=server.url, pause_between_writes=None, timeout=5)
    return GitHubActionsDeployer(workflow, ref=ref, repository=github)


def start(deployer, change: str = "CHG-000042") -> str:
    return deployer.start(
        version="v1.3.0", colour="green", target_group_arn="arn:tg", environment="production", change=change
    )


OLD_WORKFLOW = "on:\n  workflow_dispatch:\n    inputs:\n      version: {required: true}\n      colour: {}\n"


@pytest.mark.parametrize(
    ("arrange", "says"),
    [
        (
            {"workflow": "missing.yml"},
            "GitHub has no workflow missing.yml in acme/shop: name its file in .github/workflows",
        ),
        (
            {"ref": "nope"},
            "GitHub refused to run deploy.yml on nope: No ref found for: nope. Name a branch or tag that "
            "exists, in the deploy settings.",
        ),
        (
            {"workflow": "old.yml"},
            'GitHub refused to run old.yml on main: Unexpected inputs provided: ["change", "environment"]. '
            "The workflow needs `on: workflow_dispatch` with the inputs version, colour, environment and "
            "change.",
        ),
        (
            {"workflow": "ci.yml"},
            "GitHub refused to run ci.yml on main: Workflow does not have 'workflow_dispatch' trigger.",
        ),
        (
            {"token": "read-only"},
            "The GitHub token may not run the workflow deploy.yml in acme/shop (Resource not accessible "
            "by personal access token): give it the actions=write permission.",
        ),
    ],
    ids=["unknown-workflow", "unknown-ref", "unexpected-inputs", "no-dispatch-trigger", "no-permission"],
)
def test_a_dispatch_github_refuses_is_said_in_words_and_starts_nothing(github, arrange, says):
    github.push_commit(
        "main",
        {".github/workflows/old.yml": OLD_WORKFLOW, ".github/workflows/ci.yml": "on: push\njobs: {}\n"},
        "More workflows",
    )
    github.tokens["read-only"] = (DEFAULT_PERMISSIONS - {"actions:write"}) | {"actions:read"}
    with pytest.raises(DeployError) as refused:
        start(deployer(github, **arrange))
    assert str(refused.value).startswith(says) and refused.value.transient is False
    assert github.runs == []


def test_where_github_does_not_say_which_run_started_the_one_naming_the_change_is_followed(github):
    github.run_details, github.hide_new_runs = False, True  # an older GitHub Enterprise Server
    ours = deployer(github)
    ref = start(ours, "CHG-000042")
    assert ref.startswith("deploy.yml@main dispatched ") and ref.endswith(" for CHG-000042")
    assert ours.finished(ref) is False  # not listed yet
    start(deployer(github), "CHG-000043")  # another change's deployment, dispatched after it
    github.show_runs()
    theirs, mine = sorted(github.runs, key=lambda r: r["inputs"]["change"], reverse=True)
    github.move_run(theirs["id"], "completed", "success")
    assert ours.finished(ref) is False  # its own run is still queued
    github.move_run(mine["id"], "completed", "cancelled")
    with pytest.raises(DeployError, match=f"runs/{mine['id']} was cancelled: the version was not deployed"):
        ours.finished(ref)


def test_without_a_run_name_the_newest_run_dispatched_since_is_followed(github):
    github.push_commit(
        "main", {".github/workflows/deploy.yml": WORKFLOW.replace("run-name:", "# run-name:")}, "No title"
    )
    github.run_details = False
    ours = deployer(github)
    ref = start(ours)
    [started] = github.runs
    assert started["title"] == "Deploy"
    github.move_run(started["id"], "completed", "success")
    assert ours.finished(ref) is True


def test_runs_dispatched_before_are_not_taken_for_this_one(github):
    github.run_details = False
    start(deployer(github), "CHG-000042")  # an earlier attempt for the same change
    [earlier] = github.runs
    earlier["created"] -= 3600
    github.move_run(earlier["id"], "completed", "success")
    ref = start(deployer(github), "CHG-000042")
    assert deployer(github).finished(ref) is False  # its own run is queued; the earlier one is not it


def test_without_github_configured_the_deployer_says_what_to_set(settings):
    settings.GITHUB_REPOSITORY = None
    with pytest.raises(DeployError, match="GitHub is not configured: set GITHUB_REPOSITORY") as refused:
        start(GitHubActionsDeployer("deploy.yml", ref="main"))
    assert refused.value.transient is False


# The settings, on the catalogue page.


def test_the_catalogue_shows_the_workflow_and_the_monitoring(client, devops):
    environment = EnvironmentFactory()
    DeploySettings.objects.create(
        environment=environment,
        deployer=DeploySettings.Deployer.GITHUB_ACTIONS,
        github_workflow="deploy.yml",
        verify_seconds=600,
        monitor_seconds=7200,
        monitor_interval_seconds=120,
    )
    verified_login(client, devops)
    body = client.get("/environments/").content.decode()
    assert "<code>deploy.yml</code> on <code>main</code>" in body
    assert "verified for 600 s (a failure rolls back by itself), then monitored for 7200 s" in body


def test_the_admin_says_what_is_wrong_with_a_workflow_or_a_ref():
    from deployments.admin import DeploySettingsForm

    form = DeploySettingsForm(data={"github_workflow": "ci/deploy", "github_workflow_ref": "main~1"})
    assert not form.is_valid()
    assert form.errors["github_workflow"] == [
        "'ci/deploy' is not a workflow: give its file name in .github/workflows (deploy.yml) or its id."
    ]
    assert form.errors["github_workflow_ref"] == ["'main~1' is not a branch or tag name."]
