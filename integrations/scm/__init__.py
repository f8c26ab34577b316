"""The source repository a release is cut in: read a change's pull request (checks, reviews, code
owners of the changed files, signatures), merge staging into main, tag the merge, write the notes,
revert a release. One interface, two backends: GitHub (through PyGithub) and a repository on disk
(the `git` command), for the demo and for teams without GitHub. Adapters only: no database here;
the services record what they learn and each release step.
"""

from pathlib import Path

from integrations.scm.base import (
    CODEOWNERS_PATHS,
    COMPARE_FILES_LIMIT,
    NOTES_COMMITS,
    NOTES_LIMIT,
    PASSING_CONCLUSIONS,
    PULL_COMMITS_LIMIT,
    Check,
    Identity,
    PullRequestReport,
    Repository,
    Reverted,
    Review,
    ScmError,
    WorkflowRun,
    check_verdict,
)
from integrations.scm.codeowners import code_owners, individual_logins
from integrations.scm.github import GitHub
from integrations.scm.local import LocalGit
from integrations.scm.notes import checks_in_words, commits_in_notes, notes_within_limit
from integrations.scm.refs import checked_ref, ref_name_problem, short_ref, validate_git_ref

__all__ = [
    "CODEOWNERS_PATHS",
    "COMPARE_FILES_LIMIT",
    "NOTES_COMMITS",
    "NOTES_LIMIT",
    "PASSING_CONCLUSIONS",
    "PULL_COMMITS_LIMIT",
    "Check",
    "GitHub",
    "Identity",
    "LocalGit",
    "PullRequestReport",
    "Repository",
    "Reverted",
    "Review",
    "ScmError",
    "WorkflowRun",
    "check_verdict",
    "checked_ref",
    "checks_in_words",
    "code_owners",
    "commits_in_notes",
    "configured",
    "github_repository",
    "individual_logins",
    "notes_within_limit",
    "ref_name_problem",
    "repository",
    "short_ref",
    "validate_git_ref",
]


def configured() -> bool:
    """Whether releases are cut in a repository (GitHub, or one on disk)."""
    from django.conf import settings

    return bool(settings.GITHUB_REPOSITORY or settings.GIT_REPOSITORY_PATH)


def repository() -> Repository:
    """The repository releases are cut in, from the settings: GitHub when GITHUB_REPOSITORY is set,
    else the repository on disk at GIT_REPOSITORY_PATH."""
    from django.conf import settings

    if settings.GITHUB_REPOSITORY:
        return github_repository()
    if settings.GIT_REPOSITORY_PATH:
        key = settings.GIT_SIGNING_KEY or ""
        identity = Identity(
            signing_key=key, signing_format="ssh" if key and Path(key).exists() else "openpgp"
        )
        return LocalGit(
            settings.GIT_REPOSITORY_PATH,
            identity=identity,
            allowed_signers=settings.GIT_ALLOWED_SIGNERS or "",
        )
    raise ScmError(
        "No repository is configured: set GITHUB_REPOSITORY and GITHUB_TOKEN, or GIT_REPOSITORY_PATH.",
        kind="missing",
    )


def github_repository() -> GitHub:
    """The repository on GitHub from the settings (GITHUB_REPOSITORY, GITHUB_TOKEN, GITHUB_API_URL),
    for what only GitHub does: releases there, and the deploy workflows of GitHub Actions."""
    from django.conf import settings

    if not settings.GITHUB_REPOSITORY:
        raise ScmError(
            "GitHub is not configured: set GITHUB_REPOSITORY and GITHUB_TOKEN (and GITHUB_API_URL for "
            "GitHub Enterprise Server).",
            kind="missing",
        )
    if not settings.GITHUB_TOKEN:
        raise ScmError("GITHUB_REPOSITORY is set but GITHUB_TOKEN is not: set a token.", kind="token")
    return GitHub(settings.GITHUB_REPOSITORY, token=settings.GITHUB_TOKEN, api_url=settings.GITHUB_API_URL)
