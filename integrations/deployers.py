"""Who puts a version on the idle colour. The engine asks once (`start`, which returns what it
started, to follow), waits until the deployer says it is done (`finished`: False while it runs, a
DeployError when it failed), then for every target of the idle colour to be healthy: a webhook
your pipeline answers, or a GitHub Actions workflow (the demo adds its simulated production).
Adapters only: no database here."""

import json
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from django.core.exceptions import ValidationError

from integrations import outbound, signatures
from portal.errors import OutsideError

if TYPE_CHECKING:
    from integrations.scm import GitHub, WorkflowRun

T = TypeVar("T")


class DeployError(OutsideError):
    """The deployer failed: `transient` when trying again may work (the network, a rate limit,
    which lasts until `retry_at` when known), else for good."""


class WebhookDeployer:
    """POSTs {version, colour, target_group_arn, environment, change} to your pipeline, which
    deploys the version to that colour's targets. Each request is signed with the environment's
    secret (`X-Greenlight-Signature: t=<unix seconds>,v1=<HMAC-SHA256 of "<t>.<body>">`), which
    the pipeline checks before it deploys anything; the address is checked as every address from
    the settings is (integrations.outbound), and a redirect is not followed."""

    SIGNATURE_HEADER = "X-Greenlight-Signature"

    def __init__(self, url: str, secret: str) -> None:
        self.url, self.secret = url, secret

    def start(
        self, *, version: str, colour: str, target_group_arn: str, environment: str, change: str
    ) -> str:
        if not self.secret:
            raise DeployError(
                "The webhook deployer has no secret to sign its requests: set one in the deploy settings."
            )
        payload = {
            "version": version,
            "colour": colour,
            "target_group_arn": target_group_arn,
            "environment": environment,
            "change": change,
        }
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            self.SIGNATURE_HEADER: signatures.timestamped(secret=self.secret, body=body, at=int(time.time())),
        }
        try:
            answer = outbound.request("POST", self.url, body=body, headers=headers, timeout=10)
        except OutsideError as error:
            raise DeployError(
                f"The deployer at {self.url} could not be reached: {error}", transient=error.transient
            ) from None
        if answer.status >= 500:
            raise DeployError(f"The deployer at {self.url} answered {answer.status}.", transient=True)
        if answer.status >= 400:
            raise DeployError(
                f"The deployer at {self.url} refused the deployment ({answer.status}): its log says why."
            )
        if answer.redirect:
            raise DeployError(
                f"The deployer at {self.url} answered {answer.status}, a redirect, which is not followed: "
                "give the pipeline's own address in the deploy settings."
            )
        return ""

    def finished(self, ref: str) -> bool:
        """The pipeline is not followed: the colour's health says when it is done."""
        return True


# A dispatched run is found among the runs on its ref created since the dispatch, less this much
# for the difference between our clock and GitHub's.
CLOCK_SKEW = timedelta(minutes=1)
# What `start` may return: it is kept on the deployment (Deployment.deployer_ref).
REF_LIMIT = 300
# How a completed run that did not succeed ended, in words.
CONCLUSIONS = {
    "failure": "failed",
    "cancelled": "was cancelled",
    "timed_out": "timed out",
    "action_required": "stopped for an action someone must take",
    "startup_failure": "could not start",
    "skipped": "was skipped",
    "neutral": "ended without deploying (neutral)",
    "stale": "went stale",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RUN = re.compile(r"/actions/runs/(?P<id>[0-9]{1,20})(?:/|$)")
_DISPATCHED = re.compile(r"(?P<workflow>[^@\s]+)@(?P<ref>\S+) dispatched (?P<at>\S+) for (?P<change>\S+)")


class GitHubActionsDeployer:
    """Runs a GitHub Actions workflow of the repository (GITHUB_REPOSITORY) through its
    `workflow_dispatch` trigger, with the inputs version, colour, environment and change, on the
    branch or tag `ref`, and follows the run it started until it completes.

    `start` returns the run's address where GitHub says which run a dispatch started. Where it
    does not (an older GitHub Enterprise Server), it returns "deploy.yml@main dispatched <time>
    for CHG-000042", and `finished` looks for the run each time: among the runs of the workflow
    dispatched on that ref since the dispatch (less a minute of clock skew), the newest whose
    title (the workflow's `run-name`) names the change; failing that, the newest whose title is
    the workflow's own name (a workflow without a `run-name`), which two dispatches close together
    could confuse: give the workflow a `run-name` with the change in it."""

    def __init__(self, workflow: str, *, ref: str, repository: "GitHub | None" = None) -> None:
        self.workflow, self.ref = workflow, ref
        self._repository = repository  # the integrations.scm.GitHub to use; else the settings'

    def start(
        self, *, version: str, colour: str, target_group_arn: str, environment: str, change: str
    ) -> str:
        dispatched = (
            f"{self.workflow}@{self.ref} dispatched {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} for {change}"
        )
        if not _DISPATCHED.fullmatch(dispatched) or len(dispatched) > REF_LIMIT:
            raise DeployError(
                f"The workflow {self.workflow!r} on {self.ref!r} cannot be followed: name the workflow "
                "by its file or id and the ref by a branch or tag, in the deploy settings."
            )
        inputs = {"version": version, "colour": colour, "environment": environment, "change": change}
        url = self._call(lambda github: github.workflow_dispatch(self.workflow, self.ref, inputs))
        return url or dispatched

    def finished(self, ref: str) -> bool:
        """False while the run is queued or running (or not listed yet), True once it succeeded;
        a DeployError, with the run's address, when it ended any other way."""
        run = self._call(lambda github: self._run(github, ref))
        if run is None or run.status != "completed":
            return False
        if run.conclusion == "success":
            return True
        ended = CONCLUSIONS.get(run.conclusion, f"ended {run.conclusion or 'without a conclusion'}")
        raise DeployError(
            f"The deploy workflow run {run.url} {ended}: the version was not deployed. Its log on GitHub "
            "says why."
        )

    def _run(self, github: "GitHub", ref: str) -> "WorkflowRun | None":
        """The run `ref` names, or the run its dispatch started (None while GitHub lists none)."""
        dispatched = _DISPATCHED.fullmatch(ref)
        if dispatched is None:
            named = _RUN.search(ref)
            if named is None:
                raise DeployError(f"{ref!r} names no GitHub Actions run to follow.")
            return github.workflow_run(int(named["id"]))
        at = datetime.fromisoformat(dispatched["at"])
        runs = github.workflow_runs(dispatched["workflow"], ref=dispatched["ref"], since=at - CLOCK_SKEW)
        return dispatched_run(runs, change=dispatched["change"])

    def _call(self, step: "Callable[[GitHub], T]") -> T:
        """Runs `step` with the repository; its refusals become DeployErrors, passing or not."""
        from integrations import scm

        try:
            return step(self._repository or scm.github_repository())
        except scm.ScmError as error:
            raise DeployError(str(error), transient=error.transient, retry_at=error.retry_at) from None


def dispatched_run(runs: "Iterable[WorkflowRun]", *, change: str) -> "WorkflowRun | None":
    """Among the runs on the ref since the dispatch, the one the dispatch for `change` started:
    the newest whose title names the change, else the newest titled by the workflow's own name
    (a workflow without a `run-name`); None while there is neither."""
    names = re.compile(rf"(?<![\w-]){re.escape(change)}(?![\w-])")
    newest_first = sorted(runs, key=lambda run: (run.created_at or _EPOCH, run.id), reverse=True)
    return next((r for r in newest_first if names.search(r.title)), None) or next(
        (r for r in newest_first if r.title == r.name), None
    )


def validate_workflow(value: str) -> None:
    """A workflow as GitHub's API names it: its file name in .github/workflows, or its id."""
    if value and not re.fullmatch(r"[0-9]{1,20}|[A-Za-z0-9_.-]+\.ya?ml", value):
        raise ValidationError(
            f"{value!r} is not a workflow: give its file name in .github/workflows (deploy.yml) or its id."
        )
