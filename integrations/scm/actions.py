"""GitHub Actions: dispatch a deploy workflow and follow its runs."""

import itertools
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from integrations.scm.base import ScmError, WorkflowRun
from integrations.scm.github_client import GitHubClient, speaks
from integrations.scm.refs import short_ref

if TYPE_CHECKING:
    from github import GithubException
    from github.WorkflowRun import WorkflowRun as GitHubWorkflowRun


class GitHubActions(GitHubClient):
    @speaks("run the workflow", "actions: write")
    def workflow_dispatch(self, workflow: str, ref: str, inputs: dict[str, str]) -> str:
        """Runs `workflow` (its file name or id) on the branch or tag `ref` with `inputs`, through its
        `workflow_dispatch` trigger. Returns the address of the run it started where GitHub says
        which one (github.com does since February 2026), else "" (an older GitHub Enterprise
        Server, which refuses to be asked): the run is then found among `workflow_runs`."""
        from github import GithubException

        target = self._repo.get_workflow(workflow)
        # PyGithub answers True, not the run, where GitHub does not say which run (its types say
        # it always gives the run when asked for it).
        run: bool | GitHubWorkflowRun
        try:
            try:
                run = target.create_dispatch(ref, inputs, throw=True, return_run_details=True)
            except GithubException as error:
                if error.status not in (400, 422) or "return_run_details" not in str(error.data):
                    raise
                run = target.create_dispatch(ref, inputs, throw=True)
        except GithubException as error:
            raise self._dispatch_refusal(error, workflow, ref) from None
        return "" if isinstance(run, bool) else run.html_url

    def _dispatch_refusal(self, error: "GithubException", workflow: str, ref: str) -> ScmError:
        """A dispatch GitHub refused, said with what to fix: the workflow, the ref or the inputs."""
        message = (error.data or {}).get("message", "") if isinstance(error.data, dict) else ""
        if error.status == 404:
            return ScmError(
                f"GitHub has no workflow {workflow} in {self.full_name}: name its file in "
                ".github/workflows (deploy.yml) or its id, on the default branch.",
                kind="missing",
            )
        if error.status == 422:
            advice = (
                "Name a branch or tag that exists, in the deploy settings."
                if message.startswith("No ref found")
                else "The workflow needs `on: workflow_dispatch` with the inputs version, colour, "
                "environment and change."
            )
            return ScmError(
                f"GitHub refused to run {workflow} on {ref}: {message or 'unprocessable'}. {advice}",
                kind="conflict",
            )
        return self._refusal(error, f"run the workflow {workflow}", "actions: write")

    @speaks("read the workflow's runs", "actions: read")
    def workflow_runs(self, workflow: str, *, ref: str, since: datetime) -> list[WorkflowRun]:
        """The runs of `workflow` dispatched on `ref` and created at or after `since`, newest first:
        GitHub's first page (100 runs), more than a deployment's minute of dispatches."""
        runs = self._repo.get_workflow(workflow).get_runs(
            event="workflow_dispatch",
            branch=short_ref(ref),
            created=f">={since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
        )
        return [_workflow_run(run) for run in itertools.islice(runs, 100)]

    @speaks("read the workflow run", "actions: read")
    def workflow_run(self, run_id: int) -> WorkflowRun:
        return _workflow_run(self._repo.get_workflow_run(run_id))


def _workflow_run(run: "GitHubWorkflowRun") -> WorkflowRun:
    return WorkflowRun(
        id=run.id,
        url=run.html_url or "",
        status=run.status or "",
        conclusion=run.conclusion or "",
        title=run.display_title or "",
        name=run.name or "",
        created_at=run.created_at,
    )
