"""What every repository backend speaks: the interface (`Repository`), its refusals, and what it
reports of a pull request, a check, a review, a revert, a workflow run; the identity the portal's
own commits are made as."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from portal.errors import OutsideError

CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")

# The conclusions of a completed check that let a change through, as GitHub reads them.
PASSING_CONCLUSIONS = ("success", "neutral", "skipped")

# GitHub's compare lists at most 300 changed files: a longer list is cut without a word.
COMPARE_FILES_LIMIT = 300

# GitHub lists at most 250 commits of a pull request; a release of more is refused, not guessed.
PULL_COMMITS_LIMIT = 250

# Release notes list the newest commits up to this many, then say how many more there are; the
# whole stays under GitHub's limit for a release's body.
NOTES_COMMITS = 100
NOTES_LIMIT = 125_000


class ScmError(OutsideError):
    """A step the repository refused, in words a person acts on; `kind` names what went wrong
    (conflict, unsigned, checks, token, rate_limit, network, missing). `retry_at` is when a
    rate-limited step may run again."""

    def __init__(self, message: str, *, kind: str, retry_at: datetime | None = None):
        # Worth trying again by itself: the repository was out of reach, or rationed.
        super().__init__(message, transient=kind in ("network", "rate_limit"), retry_at=retry_at)
        self.kind = kind


@dataclass(frozen=True)
class Check:
    """An automated check on a commit: a check run or a commit status."""

    name: str
    status: str  # queued, in_progress or completed
    conclusion: str = ""  # success, failure, ... once completed
    url: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "completed" and self.conclusion in PASSING_CONCLUSIONS


@dataclass(frozen=True)
class Review:
    login: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED or DISMISSED
    commit: str = ""
    submitted_at: str = ""


@dataclass
class PullRequestReport:
    """What the repository says about releasing `source` into `target`."""

    head: str
    number: int | None = None  # None where there are no pull requests (a repository on disk)
    url: str = ""
    mergeable: bool | None = None  # None while the host has not worked it out
    checks: list[Check] | None = None  # None where the backend cannot see checks (a repository on disk)
    required_checks: list[str] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)  # CODEOWNERS entries owning the changed files
    owner_logins: list[str] = field(default_factory=list)  # the people among them, teams expanded
    unresolved_teams: list[str] = field(default_factory=list)  # teams whose members could not be read
    unsigned: list[str] = field(default_factory=list)
    # What merging would bring, oldest first: (sha, subject); None where it could not be listed whole.
    commits: list[tuple[str, str]] | None = field(default_factory=list)


@dataclass(frozen=True)
class Reverted:
    commit: str
    url: str = ""  # the pull request that carries the revert, where there is one


@dataclass(frozen=True)
class WorkflowRun:
    """One run of a GitHub Actions workflow, as a deployment follows it."""

    id: int
    url: str
    status: str  # queued, in_progress, waiting, ... or completed
    conclusion: str = ""  # success, failure, cancelled, timed_out, ... once completed
    title: str = ""  # GitHub's display title: the workflow's `run-name`, else its name
    name: str = ""  # the workflow's name
    created_at: datetime | None = None


@dataclass(frozen=True)
class Identity:
    """Who the portal's own merges and tags are made as, and the key that signs them, if any."""

    name: str = "Greenlight"
    email: str = "greenlight@localhost"
    signing_key: str = ""  # a GPG key id, or the path of an SSH key
    signing_format: str = "openpgp"  # or "ssh"


# Who the portal's commits are made as when nobody says otherwise.
DEFAULT_IDENTITY = Identity()


def check_verdict(checks: Iterable[Check], required: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The checks that fail, those still running, and the required ones that never reported."""
    failing = [c.name for c in checks if c.status == "completed" and not c.passed]
    running = [c.name for c in checks if c.status != "completed"]
    reported = {c.name for c in checks}
    return failing, running, [name for name in required if name not in reported]


class Repository(Protocol):
    """The repository releases are cut in, as the portal speaks to it: GitHub
    (integrations.scm.GitHub) or a repository on disk (integrations.scm.LocalGit). Every step
    refuses with an ScmError in words."""

    def head(self, ref: str) -> str:
        """The commit a branch or tag points at."""
        ...

    def tags(self) -> set[str]: ...

    def tag_commit(self, name: str) -> str | None:
        """The commit a tag points at, or None when there is no such tag."""
        ...

    def last_tag(self, branch: str) -> str | None:
        """The last release reachable from the branch, or None before the first."""
        ...

    def is_merged(self, commit: str, target: str) -> bool: ...

    def parents(self, commit: str) -> list[str]:
        """The parents of a commit, the first one first."""
        ...

    def only_merges_target(self, before: str, after: str, target: str) -> bool:
        """Whether `after` only merges `target` into `before` (a push that keeps approvals)."""
        ...

    def unsigned_commits(self, source: str, target: str) -> list[str]: ...

    def merge_that_brought(
        self, commit: str, source: str, target: str, *, number: int | None = None
    ) -> str | None:
        """The merge commit on `target` that brought `commit` in, if any (a merge made before a
        crash)."""
        ...

    def pull_request(
        self, source: str, target: str, *, number: int | None = None, title: str = "", body: str = ""
    ) -> PullRequestReport: ...

    def merge(
        self,
        source: str,
        target: str,
        message: str,
        *,
        head: str = "",
        number: int | None = None,
        all_checks: bool = True,
    ) -> str:
        """Merges `source` (at `head`) into `target` with a merge commit; returns that commit."""
        ...

    def tag(self, name: str, commit: str, message: str) -> None: ...

    def release_notes(self, previous_tag: str | None, commit: str, *, version: str = "") -> str: ...

    def publish(self, tag: str, notes: str) -> str:
        """Publishes the release's notes; returns its address ("" where there is no release page)."""
        ...

    def revert(self, tag: str, target: str) -> Reverted: ...
