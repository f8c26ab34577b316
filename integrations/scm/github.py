"""A repository on GitHub or GitHub Enterprise, through PyGithub."""

from integrations.scm.actions import GitHubActions
from integrations.scm.github_releases import GitHubReleases


class GitHub(GitHubReleases, GitHubActions):
    """A repository on GitHub or GitHub Enterprise, through PyGithub. PyGithub's own retries are
    off: a rate limit or an outage is an ScmError at once (with the reset time), and the task
    that asked reschedules itself instead of sleeping in a worker."""


__all__ = ["GitHub"]
