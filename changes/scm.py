"""The source repository a release is cut in: read a change's pull request (checks, reviews, code
owners of the changed files, signatures), merge staging into main, tag the merge, write the notes,
revert a release. One interface, two backends: GitHub (through PyGithub) and a repository on disk
(the `git` command), for the demo and for teams without GitHub. Adapters only: no database here;
the services record what they learn and each release step.
"""

import functools
import itertools
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from pathspec import GitIgnoreSpec

# Where GitHub looks for the code owners file, in its order.
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


class ScmError(Exception):
    """A step the repository refused, in words a person acts on; `kind` names what went wrong
    (conflict, unsigned, checks, token, rate_limit, network, missing). `retry_at` is when a
    rate-limited step may run again."""

    def __init__(self, message: str, *, kind: str, retry_at: datetime | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_at = retry_at

    @property
    def transient(self) -> bool:
        """Worth trying again by itself: the repository was out of reach, or rationed."""
        return self.kind in ("network", "rate_limit")


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


_BAD_REF = re.compile(r"^[-/.]|\.\.|//|@\{|/\.|[\x00-\x20~^:?*\[\\\x7f]|(\.lock|[/.])$")


def ref_name_problem(value: str) -> str:
    """Why `value` is not a branch or tag name git accepts (git check-ref-format), or ""."""
    if not value or len(value) > 255 or value == "@" or _BAD_REF.search(value):
        return f"{value!r} is not a branch or tag name."
    return ""


def validate_git_ref(value: str) -> None:
    """A model and form validator: an empty value is left to `blank`."""
    from django.core.exceptions import ValidationError

    if value and ref_name_problem(value):
        raise ValidationError(ref_name_problem(value))


def checked_ref(name: str) -> str:
    """A branch name about to reach git or GitHub, refused unless git would accept it: a name
    starting with a dash would be read as an option, and a `..` walks somewhere else."""
    problem = ref_name_problem(name)
    if problem:
        raise ScmError(problem, kind="invalid")
    return name


def short_ref(ref: str) -> str:
    """A branch or tag as GitHub names a run's branch: refs/heads/main is main."""
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/")


# A comment starts a line, or follows a space; `\#` and `a#b` are parts of a pattern.
_CODEOWNERS_COMMENT = re.compile(r"(?:^|\s)#")
# A pattern or an owner: a run of non-spaces, where a backslash escapes the next character.
_CODEOWNERS_WORD = re.compile(r"(?:\\.|\S)+")


def code_owners(codeowners: str, paths: list[str]) -> list[str]:
    """The owners of `paths` by a CODEOWNERS file, read as GitHub reads it: for each path the last
    rule that matches it names its owners; a rule with no owner leaves the path unowned; a line
    GitHub cannot use is skipped."""
    rules = []
    for line in codeowners.splitlines():
        words = _CODEOWNERS_WORD.findall(_CODEOWNERS_COMMENT.split(line, 1)[0])
        matches = _codeowners_pattern(words[0]) if words else None
        if matches is not None:
            rules.append((matches, words[1:]))
    owners: list[str] = []
    for path in paths:
        matching = [names for matches, names in rules if matches(path)]
        for owner in matching[-1] if matching else []:
            if owner not in owners:
                owners.append(owner)
    return owners


def _codeowners_pattern(pattern: str) -> Callable[[str], bool] | None:
    """What one CODEOWNERS pattern matches: gitignore's rules, except where GitHub departs from
    them. GitHub documents that a `\\#` escape, a `!` negation and a `[ ]` range do not work in
    CODEOWNERS, and that `docs/*` owns the files in docs/ but not those in its subfolders. None
    for a line GitHub would not use, which then matches nothing."""
    if pattern.startswith(("!", "\\#")) or "[" in pattern:
        return None
    try:
        spec = GitIgnoreSpec.from_lines([pattern])
        if pattern.endswith("/*") and not pattern.endswith("**/*"):
            deeper = GitIgnoreSpec.from_lines([f"{pattern}/*"])
            return lambda path: spec.match_file(path) and not deeper.match_file(path)
    except ValueError:  # pathspec's GitIgnorePatternError: GitHub skips the line too
        return None
    return spec.match_file


def checks_in_words(checks, required: list[str]) -> str:
    """What keeps the checks from passing, in words ("failing: lint; still running: e2e; required,
    not reported: build"), or "" when nothing does: the deploy gate and the merge say it alike."""
    failing, running, missing = check_verdict(checks, required)
    return "; ".join(
        f"{label}: {', '.join(names)}"
        for label, names in (
            ("failing", failing),
            ("still running", running),
            ("required, not reported", missing),
        )
        if names
    )


def commits_in_notes(lines: list[str], more: int) -> str:
    """The commits of a release's notes, newest first, and how many more there are."""
    listed = "\n".join(lines) or "- No changes since the previous release."
    return listed + (f"\n- … and {more} more commit{'s' if more != 1 else ''}" if more > 0 else "")


def notes_within_limit(text: str) -> str:
    """The notes, cut to stay under GitHub's limit for a release's body."""
    if len(text) < NOTES_LIMIT:
        return text
    cut = f"\n\n… (cut here: the notes were longer than GitHub's {NOTES_LIMIT:,} characters)"
    return text[: NOTES_LIMIT - 1 - len(cut)] + cut


def _notes_line(subject: str, sha: str, author: str) -> str:
    subject = subject if len(subject) <= 200 else subject[:199] + "…"
    return f"- {subject} ({sha[:7]}, {author})"


def individual_logins(owners: list[str]) -> list[str]:
    """The GitHub logins named directly (`@login`), lowercased; teams and e-mails are not."""
    return [o[1:].lower() for o in owners if o.startswith("@") and "/" not in o]


@dataclass(frozen=True)
class Identity:
    """Who the portal's own merges and tags are made as, and the key that signs them, if any."""

    name: str = "Greenlight"
    email: str = "greenlight@localhost"
    signing_key: str = ""  # a GPG key id, or the path of an SSH key
    signing_format: str = "openpgp"  # or "ssh"


def _records(output: str) -> list[list[str]]:
    """The NUL-separated fields of each line of git's output."""
    return [line.split("\0") for line in output.splitlines() if line]


class LocalGit:
    """A repository on disk, driven with the `git` command."""

    def __init__(self, path: str | Path, *, identity: Identity = Identity(), allowed_signers: str = ""):
        self.path = Path(path)
        self.identity = identity
        self.allowed_signers = allowed_signers  # for SSH signatures: the file `git verify-commit` trusts

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        config = ["-c", f"user.name={self.identity.name}", "-c", f"user.email={self.identity.email}"]
        if self.identity.signing_key:
            config += [
                "-c",
                f"user.signingkey={self.identity.signing_key}",
                "-c",
                f"gpg.format={self.identity.signing_format}",
            ]
        if self.allowed_signers:
            config += ["-c", f"gpg.ssh.allowedSignersFile={self.allowed_signers}"]
        result = subprocess.run(
            ["git", "-C", str(self.path), *config, *args], capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            raise ScmError(
                f"git {args[0]} failed: {result.stderr.strip() or result.stdout.strip()}", kind="missing"
            )
        return result

    def _sign(self) -> list[str]:
        return ["-S"] if self.identity.signing_key else []

    def head(self, ref: str) -> str:
        checked_ref(ref)
        result = self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if result.returncode != 0:
            raise ScmError(f"There is no branch or tag {ref!r} in the repository.", kind="missing")
        return result.stdout.strip()

    def tags(self) -> set[str]:
        return set(self._git("tag", "--list").stdout.split())

    def tag_commit(self, name: str) -> str | None:
        result = self._git("rev-parse", "--verify", "--quiet", f"refs/tags/{name}^{{commit}}", check=False)
        return result.stdout.strip() or None

    def last_tag(self, branch: str) -> str | None:
        """The newest tag reachable from the branch, or None before the first release."""
        result = self._git("describe", "--tags", "--abbrev=0", self.head(branch), check=False)
        return result.stdout.strip() or None

    def unsigned_commits(self, source: str, target: str) -> list[str]:
        """The commits the merge would bring whose signature `git verify-commit` does not accept."""
        shas = self._git("rev-list", f"{self.head(target)}..{self.head(source)}").stdout.split()
        return [sha for sha in shas if self._git("verify-commit", sha, check=False).returncode != 0]

    def merge_that_brought(
        self, commit: str, source: str, target: str, *, number: int | None = None
    ) -> str | None:
        """The merge commit on `target` that brought `commit` in (a merge made before a crash)."""
        merges = self._git(
            "rev-list", "--merges", "--ancestry-path", "--reverse", f"{commit}..{self.head(target)}"
        )
        for merge in merges.stdout.split():
            parents = self._git("rev-list", "--parents", "-n", "1", merge).stdout.split()[1:]
            if commit in parents:
                return merge
        return None

    def is_merged(self, commit: str, target: str) -> bool:
        return (
            self._git("merge-base", "--is-ancestor", commit, self.head(target), check=False).returncode == 0
        )

    def parents(self, commit: str) -> list[str]:
        """The parents of a commit, the first one first (a merge's first parent is the target's)."""
        return self._git("rev-list", "--parents", "-n", "1", commit).stdout.split()[1:]

    def only_merges_target(self, before: str, after: str, target: str) -> bool:
        """Whether `after` only merges `target` into `before`: one merge commit whose parents are
        `before` and a commit of `target`, and whose tree is exactly what git's own merge of the
        two makes (a merge that slips in a change of its own is not one)."""
        parents = self._git("rev-list", "--parents", "-n", "1", after, check=False).stdout.split()[1:]
        if len(parents) != 2 or parents[0] != before or not self.is_merged(parents[1], target):
            return False
        merged = self._git("merge-tree", "--write-tree", before, parents[1], check=False)
        if merged.returncode != 0:
            return False  # a conflict, resolved by hand: a person's change
        tree = self._git("rev-parse", f"{after}^{{tree}}").stdout.strip()
        return merged.stdout.split()[0] == tree

    def pull_request(
        self, source: str, target: str, *, number: int | None = None, title: str = "", body: str = ""
    ) -> PullRequestReport:
        """A repository on disk has no pull requests, checks or reviews: what it can say is whether
        the branches merge, who owns the changed files, and which commits are not signed. Its
        `checks` are None: it cannot see them (they come by GitHub's events, if at all)."""
        head = self.head(source)
        merges = self._git("merge-tree", "--write-tree", self.head(target), head, check=False).returncode == 0
        changed = self._git("diff", "--name-only", f"{self.head(target)}...{head}").stdout.split()
        owners = code_owners(self._codeowners(target), changed)
        return PullRequestReport(
            head=head,
            mergeable=merges,
            changed_files=changed,
            owners=owners,
            owner_logins=individual_logins(owners),
            unsigned=self.unsigned_commits(source, target),
            commits=self.commits_between(target, head),
        )

    def commits_between(self, target: str, head: str) -> list[tuple[str, str]] | None:
        """The commits `head` has that `target` lacks, oldest first, with their subjects (None when
        there are more than a release may list)."""
        log = self._git(
            "log", "--reverse", f"--max-count={PULL_COMMITS_LIMIT + 1}", "--format=%H%x00%s",
            f"{self.head(target)}..{head}",
        )  # fmt: skip
        commits = [(sha, subject) for sha, subject in _records(log.stdout)]
        return commits if len(commits) <= PULL_COMMITS_LIMIT else None

    def _codeowners(self, ref: str) -> str:
        for path in CODEOWNERS_PATHS:
            result = self._git("show", f"{ref}:{path}", check=False)
            if result.returncode == 0:
                return result.stdout
        return ""

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
        """A merge commit of `source` (at `head` when given: the commit that was checked) into
        `target`, never a fast-forward, so a release is one commit to tag and to revert; a conflict
        leaves the target as it was. (No pull request or checks on disk: `number` and
        `all_checks` are GitHub's.)"""
        head = head or self.head(source)
        self._git("checkout", "--quiet", checked_ref(target))
        result = self._git("merge", "--no-ff", *self._sign(), "-m", message, head, check=False)
        if result.returncode != 0:
            files = self._git("diff", "--name-only", "--diff-filter=U", check=False).stdout.split()
            self._git("merge", "--abort", check=False)
            raise ScmError(
                f"{source} does not merge cleanly into {target}: conflicts in "
                f"{', '.join(files) or 'the tree'}. Merge {target} into {source}, resolve them, "
                "and let staging soak again.",
                kind="conflict",
            )
        return self.head(target)

    def tag(self, name: str, commit: str, message: str) -> None:
        sign = ["-s"] if self.identity.signing_key else ["-a"]
        self._git("tag", *sign, "-m", message, name, commit)

    def publish(self, tag: str, notes: str) -> str:
        """A repository on disk has no release page: the annotated tag carries the notes."""
        return ""

    def release_notes(self, previous_tag: str | None, commit: str, *, version: str = "") -> str:
        """The commits since the previous release, newest first, one line each, the newest
        NOTES_COMMITS of them and how many more there are."""
        span = f"{previous_tag}..{commit}" if previous_tag else commit
        total = int(self._git("rev-list", "--no-merges", "--count", span).stdout.strip() or 0)
        log = self._git(
            "log", "--no-merges", f"--max-count={NOTES_COMMITS}", "--format=%H%x00%an%x00%s", span
        )
        lines = [_notes_line(subject, sha, author) for sha, author, subject in _records(log.stdout)]
        return notes_within_limit(commits_in_notes(lines, total - len(lines)))

    def revert(self, tag: str, target: str) -> Reverted:
        """A commit on `target` that undoes the release `tag` (its merge, against the first parent)."""
        commit = self.tag_commit(tag)
        if commit is None:
            raise ScmError(f"There is no release {tag} to revert.", kind="missing")
        self._git("checkout", "--quiet", checked_ref(target))
        parents = self._git("rev-list", "--parents", "-n", "1", commit).stdout.split()[1:]
        mainline = ["-m", "1"] if len(parents) > 1 else []
        result = self._git("revert", "--no-edit", *mainline, *self._sign(), commit, check=False)
        if result.returncode != 0:
            self._git("revert", "--abort", check=False)
            raise ScmError(
                f"{tag} does not revert cleanly on {target}: later changes touch the same lines.",
                kind="conflict",
            )
        return Reverted(commit=self.head(target))


def check_verdict(checks, required: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The checks that fail, those still running, and the required ones that never reported."""
    failing = [c.name for c in checks if c.status == "completed" and not c.passed]
    running = [c.name for c in checks if c.status != "completed"]
    reported = {c.name for c in checks}
    return failing, running, [name for name in required if name not in reported]


def _speaks(action: str, permission: str):
    """Turns what PyGithub and the network raise during `action` into an ScmError in words."""

    def wrap(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            from github import GithubException
            from requests import RequestException

            try:
                return method(self, *args, **kwargs)
            except GithubException as error:
                raise self._refusal(error, action, permission) from None
            except RequestException as error:
                raise ScmError(
                    f"GitHub could not be reached at {self.api_url} to {action} ({type(error).__name__}); "
                    "the step is tried again.",
                    kind="network",
                ) from None

        return call

    return wrap


class GitHub:
    """A repository on GitHub or GitHub Enterprise, through PyGithub. PyGithub's own retries are
    off: a rate limit or an outage is an ScmError at once (with the reset time), and the task
    that asked reschedules itself instead of sleeping in a worker."""

    def __init__(
        self,
        full_name: str,
        *,
        token: str,
        api_url: str = "https://api.github.com",
        identity: Identity = Identity(),
        timeout: int = 15,
        pause_between_writes: float | None = 1.0,  # GitHub asks for a second between writes
    ):
        from github import Auth, Github

        self.full_name, self.api_url, self.identity = full_name, api_url.rstrip("/"), identity
        self.owner = full_name.split("/")[0]
        self._github = Github(
            auth=Auth.Token(token),
            base_url=self.api_url,
            timeout=timeout,
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=pause_between_writes,
            lazy=True,  # objects are fetched when first read, inside the step that reads them
            per_page=100,  # GitHub's largest page: fewer requests against the rate limit
        )
        self._repo = self._github.get_repo(full_name)

    def _refusal(self, error, action: str, permission: str) -> ScmError:
        from github import BadCredentialsException, RateLimitExceededException

        headers = {k.lower(): str(v) for k, v in (error.headers or {}).items()}
        message = (error.data or {}).get("message", "") if isinstance(error.data, dict) else str(error.data)
        if (
            isinstance(error, RateLimitExceededException)
            or error.status == 429
            or (
                error.status == 403
                and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers)
            )
        ):
            retry_at = _rate_limit_ends(headers)
            return ScmError(
                f"GitHub's rate limit for this token is used up until {retry_at:%H:%M:%S} UTC; "
                f"the step to {action} waits until then.",
                kind="rate_limit",
                retry_at=retry_at,
            )
        if isinstance(error, BadCredentialsException) or error.status == 401:
            return ScmError(
                "GitHub refused the token (401 Bad credentials): it is wrong, expired or revoked. "
                "Set a valid GITHUB_TOKEN.",
                kind="token",
            )
        if error.status == 403:
            needed = headers.get("x-accepted-github-permissions") or permission
            return ScmError(
                f"The GitHub token may not {action} in {self.full_name} ({message or 'forbidden'}): "
                f"give it the {needed} permission.",
                kind="token",
            )
        if error.status == 404:
            return ScmError(
                f"GitHub shows nothing to {action} in {self.full_name}: check GITHUB_REPOSITORY and that "
                "the token can read the repository.",
                kind="missing",
            )
        if error.status >= 500:
            return ScmError(
                f"GitHub answered {error.status} when asked to {action}; the step is tried again.",
                kind="network",
            )
        return ScmError(f"GitHub refused to {action}: {message or error.status}.", kind="conflict")

    # Reading.

    @_speaks("read a branch", "contents: read")
    def head(self, ref: str) -> str:
        from github import UnknownObjectException

        checked_ref(ref)
        try:
            return self._repo.get_branch(ref).commit.sha
        except UnknownObjectException:
            commit = self.tag_commit(ref)
        if commit is None:
            raise ScmError(f"There is no branch or tag {ref!r} in {self.full_name}.", kind="missing")
        return commit

    @_speaks("list the tags", "contents: read")
    def tags(self) -> set[str]:
        return {tag.name for tag in self._repo.get_tags()}

    @_speaks("read a tag", "contents: read")
    def tag_commit(self, name: str) -> str | None:
        from github import UnknownObjectException

        try:
            target = self._repo.get_git_ref(f"tags/{name}").object
        except UnknownObjectException:
            return None
        return self._repo.get_git_tag(target.sha).object.sha if target.type == "tag" else target.sha

    @_speaks("find the last release", "contents: read")
    def last_tag(self, branch: str) -> str | None:
        """The highest version tag reachable from the branch (tags that are not versions are
        not releases), or None before the first release."""
        from changes.versions import Version, VersionRefused

        versions = []
        for tag in self._repo.get_tags():
            try:
                versions.append((Version.parse(tag.name), tag))
            except VersionRefused:
                continue
        for _, tag in sorted(versions, key=lambda pair: pair[0], reverse=True):
            if self.is_merged(tag.commit.sha, branch):
                return tag.name
        return None

    @_speaks("compare commits", "contents: read")
    def is_merged(self, commit: str, target: str) -> bool:
        from github import UnknownObjectException

        try:
            return self._repo.compare(commit, target).status in ("ahead", "identical")
        except UnknownObjectException:
            return False

    @_speaks("read a commit", "contents: read")
    def parents(self, commit: str) -> list[str]:
        return [parent.sha for parent in self._repo.get_commit(commit).parents]

    def only_merges_target(self, before: str, after: str, target: str) -> bool:
        """GitHub cannot redo a merge without writing one, so a push is never taken to only merge
        the target in: new commits always dismiss the portal's approvals (GitHub's branch
        protection rules its own reviews)."""
        return False

    @_speaks("read commit signatures", "contents: read")
    def unsigned_commits(self, source: str, target: str) -> list[str]:
        """The commits the merge would bring that GitHub does not show as verified."""
        commits = self._repo.compare(target, source).commits
        return [c.sha for c in commits if not c.commit.verification.verified]

    @_speaks("find the pull request that merged a commit", "pull requests: read")
    def merge_that_brought(
        self, commit: str, source: str, target: str, *, number: int | None = None
    ) -> str | None:
        """The merge commit of the pull request of `source` into `target` that was merged at
        `commit` (a merge made before a crash, or whose answer was lost): the numbered one when
        known, else the closed ones. Not `GET /commits/{sha}/pulls`: for a commit that is not on
        the default branch GitHub lists only open pull requests there."""
        if number:
            pull = self._repo.get_pull(number)
            if pull.merged_at is not None and pull.head.sha == commit and pull.base.ref == target:
                return pull.merge_commit_sha
        for pull in self._repo.get_pulls(state="closed", base=target, head=f"{self.owner}:{source}"):
            if pull.merged_at is not None and pull.head.sha == commit:
                return pull.merge_commit_sha
        return None

    @_speaks("read the pull request", "pull requests: read, checks: read")
    def pull_request(
        self, source: str, target: str, *, number: int | None = None, title: str = "", body: str = ""
    ) -> PullRequestReport:
        """The pull request of `source` into `target` (the one numbered, else the open one, else
        a new one when `title` is given) with its checks, reviews, code owners and signatures."""
        pull = self._pull(source, target, number=number, title=title, body=body)
        if pull is None:
            head = self.head(source)
            listed = self._repo.compare(target, head)
            commits = [(c.sha, c.commit.message.split("\n", 1)[0]) for c in listed.commits]
            whole = listed.total_commits <= PULL_COMMITS_LIMIT and len(commits) == listed.total_commits
            return PullRequestReport(head=head, checks=self._checks(head), commits=commits if whole else None)
        head = pull.head.sha
        pulled = list(pull.get_commits())
        changed = [f.filename for f in pull.get_files()]
        owners = code_owners(self._codeowners(target), changed)
        owner_logins, unresolved_teams = self._owner_logins(owners)
        return PullRequestReport(
            head=head,
            number=pull.number,
            url=pull.html_url,
            mergeable=pull.mergeable,
            checks=self._checks(head),
            required_checks=self._required_checks(target),
            reviews=[
                Review(
                    login=r.user.login.lower() if r.user else "ghost",  # a deleted account
                    state=r.state,
                    commit=r.commit_id or "",
                    submitted_at=r.submitted_at.isoformat() if r.submitted_at else "",
                )
                for r in pull.get_reviews()
            ],
            changed_files=changed,
            owners=owners,
            owner_logins=owner_logins,
            unresolved_teams=unresolved_teams,
            unsigned=[c.sha for c in pulled if not c.commit.verification.verified],
            commits=(
                [(c.sha, c.commit.message.split("\n", 1)[0]) for c in pulled]
                if pull.commits <= PULL_COMMITS_LIMIT and len(pulled) == pull.commits
                else None
            ),
        )

    def _pull(self, source: str, target: str, *, number: int | None, title: str, body: str):
        from github import GithubException

        for ref in (source, target):
            checked_ref(ref)
        if number:
            pull = self._repo.get_pull(number)
            head = pull.head.ref if pull.head.label == f"{self.owner}:{pull.head.ref}" else pull.head.label
            if (head, pull.base.ref) != (source, target):
                raise ScmError(
                    f"Pull request #{number} merges {head} into {pull.base.ref}, not {source} into "
                    f"{target}: name the right one.",
                    kind="missing",
                )
            return pull
        for pull in self._repo.get_pulls(state="open", base=target, head=f"{self.owner}:{source}"):
            return pull
        if not title:
            return None
        try:
            return self._repo.create_pull(base=target, head=source, title=title, body=body)
        except GithubException as error:
            if error.status == 422 and "No commits between" in str(error.data):
                raise ScmError(
                    f"{source} has nothing that {target} lacks: there is nothing to release.", kind="missing"
                ) from None
            raise

    def _checks(self, sha: str) -> list[Check]:
        commit = self._repo.get_commit(sha)
        checks = [
            Check(run.name, run.status, run.conclusion or "", run.html_url or "")
            for run in commit.get_check_runs()
        ]
        for status in commit.get_combined_status().statuses:
            conclusion = {"success": "success", "failure": "failure", "error": "failure"}.get(
                status.state, ""
            )
            checks.append(
                Check(
                    status.context,
                    "completed" if conclusion else "in_progress",
                    conclusion,
                    status.target_url or "",
                )
            )
        return checks

    def _required_checks(self, branch: str) -> list[str]:
        """The checks the branch's protection requires (read from the branch, which any reader sees)."""
        protection = self._repo.get_branch(branch).raw_data.get("protection") or {}
        required = protection.get("required_status_checks") or {}
        if not protection.get("enabled") or required.get("enforcement_level") == "off":
            return []
        names = list(required.get("contexts") or [])
        names += [c["context"] for c in required.get("checks") or [] if c["context"] not in names]
        return names

    def _codeowners(self, ref: str) -> str:
        from github import UnknownObjectException

        for path in CODEOWNERS_PATHS:
            try:
                return self._repo.get_contents(path, ref=ref).decoded_content.decode()
            except UnknownObjectException:
                continue
        return ""

    def _owner_logins(self, owners: list[str]) -> tuple[list[str], list[str]]:
        """The people among the owners, `@login` as is and `@org/team` by its members; and the
        teams the token may not read or that do not exist (403, 404), which stay named only by
        the team. Any other refusal (a rate limit, a bad token, an outage) stops the read."""
        from github import GithubException

        logins, unresolved = individual_logins(owners), []
        for owner in owners:
            if owner.startswith("@") and "/" in owner:
                org, slug = owner[1:].split("/", 1)
                try:
                    members = self._github.get_organization(org).get_team_by_slug(slug).get_members()
                    logins += [m.login.lower() for m in members if m.login.lower() not in logins]
                except GithubException as error:
                    if error.status not in (403, 404) or self._refusal(error, "", "").kind == "rate_limit":
                        raise
                    unresolved.append(owner)
        return logins, unresolved

    # Releasing.

    @_speaks("merge the pull request", "contents: write, pull requests: write")
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
        """Merges the pull request of `source` into `target` (the one numbered: the one that was
        read; else the open one, opened when there is none) with a merge commit, only at `head`
        (the commit that was checked) and only with its checks passing: the checks the branch's
        protection requires always, every reported check too when `all_checks` (the policy's
        "checks must pass"). GitHub signs its merge commits."""
        from github import GithubException

        pull = self._pull(source, target, number=number, title=message, body="")
        if pull.state != "open":
            raise ScmError(
                f"Pull request #{pull.number} ({source} into {target}) is closed without being merged: "
                "reopen it, or name the open one on the change.",
                kind="missing",
            )
        head = head or pull.head.sha
        if pull.head.sha != head:
            raise ScmError(
                f"{source} moved to {pull.head.sha[:10]} after {head[:10]} was checked: the new commits "
                "must soak and be checked before they are released.",
                kind="conflict",
            )
        required = self._required_checks(target)
        checks = [c for c in self._checks(head) if all_checks or c.name in required]
        said = checks_in_words(checks, required)
        if said:
            raise ScmError(
                f"Checks on {head[:10]} do not all pass ({said}): pull request #{pull.number} is not merged.",
                kind="checks",
            )
        if pull.mergeable is False:
            raise self._conflict(pull, source, target)
        try:
            merged = pull.merge(commit_title=message, merge_method="merge", sha=head)
        except GithubException as error:
            if error.status == 405 and "not mergeable" in str(error.data):
                raise self._conflict(pull, source, target) from None
            raise
        return merged.sha

    @staticmethod
    def _conflict(pull, source: str, target: str) -> ScmError:
        return ScmError(
            f"Pull request #{pull.number} ({source} into {target}) has conflicts. Merge {target} into "
            f"{source}, resolve them, and let staging soak again.",
            kind="conflict",
        )

    @_speaks("create the tag", "contents: write")
    def tag(self, name: str, commit: str, message: str) -> None:
        """An annotated tag object on the commit, and the ref that names it."""
        from github import InputGitAuthor

        tagger = InputGitAuthor(self.identity.name, self.identity.email)
        tag = self._repo.create_git_tag(name, message, commit, "commit", tagger=tagger)
        self._repo.create_git_ref(f"refs/tags/{name}", tag.sha)

    @_speaks("write the release notes", "contents: write")
    def release_notes(self, previous_tag: str | None, commit: str, *, version: str = "") -> str:
        """GitHub's own notes (the pull requests merged since the previous tag), then the commits
        newest first: the newest NOTES_COMMITS that are not merges, and how many more there are
        (read page by page and no further, so a first release does not page through the whole
        history)."""
        pulls = ""
        if version:
            since = {"previous_tag_name": previous_tag} if previous_tag else {}
            generated = self._repo.generate_release_notes(version, target_commitish=commit, **since)
            pulls = generated.body.strip()
        if previous_tag:
            comparison = self._repo.compare(previous_tag, commit)
            newest_first, total = comparison.commits.reversed, lambda: comparison.total_commits
        else:
            newest_first = self._repo.get_commits(sha=commit)
            # One request (a page of one: the last page's number); a list of its own, as a list
            # that was read from forgets its `sha`.
            total = lambda: self._repo.get_commits(sha=commit).totalCount  # noqa: E731
        lines, seen = [], 0
        for c in newest_first:
            seen += 1
            if len(c.parents) < 2:
                message = c.commit.message.splitlines() or [""]
                lines.append(_notes_line(message[0], c.sha, c.commit.author.name))
                if len(lines) == NOTES_COMMITS:
                    break
        more = total() - seen if len(lines) == NOTES_COMMITS else 0
        return notes_within_limit(
            "\n\n".join(part for part in (pulls, "## Commits\n" + commits_in_notes(lines, more)) if part)
        )

    @_speaks("publish the release", "contents: write")
    def publish(self, tag: str, notes: str) -> str:
        """The GitHub release of the tag with the notes (the one there already, after a retry)."""
        from github import UnknownObjectException

        try:
            return self._repo.get_release(tag).html_url
        except UnknownObjectException:
            return self._repo.create_git_release(tag, name=tag, message=notes).html_url

    @_speaks("open the revert", "contents: write, pull requests: write")
    def revert(self, tag: str, target: str) -> Reverted:
        """A branch `revert-<tag>` with one commit that puts back the files the release changed,
        and a pull request of it into `target` (reviewed and merged like any change). Refused when
        later commits touched the same files."""
        from github import GithubException, InputGitTreeElement

        release = self.tag_commit(tag)
        if release is None:
            raise ScmError(f"There is no release {tag} to revert.", kind="missing")
        branch = f"revert-{tag}"
        for pull in self._repo.get_pulls(state="open", base=target, head=f"{self.owner}:{branch}"):
            return Reverted(commit=pull.head.sha, url=pull.html_url)
        release_commit = self._repo.get_git_commit(release)
        before = release_commit.parents[0].sha
        changed = self._repo.compare(before, release).files
        if len(changed) >= COMPARE_FILES_LIMIT:
            raise self._too_large(tag, f"it changes {COMPARE_FILES_LIMIT} files or more")
        paths = {f.filename for f in changed} | {f.previous_filename for f in changed if f.previous_filename}
        tip = self.head(target)
        if tip != release:
            since = self._repo.compare(release, tip).files
            if len(since) >= COMPARE_FILES_LIMIT:
                raise self._too_large(tag, f"{COMPARE_FILES_LIMIT} files or more changed on {target} since")
            clash = sorted(paths & ({f.filename for f in since} | {f.previous_filename for f in since}))
            if clash:
                raise ScmError(
                    f"{tag} does not revert cleanly on {target}: later changes touch {', '.join(clash)}.",
                    kind="conflict",
                )
        old, new = (
            self._tree(self._repo.get_git_commit(before).tree.sha, tag),
            self._tree(release_commit.tree.sha, tag),
        )
        odd = sorted(p for p in paths if any(p in tree and tree[p].type != "blob" for tree in (old, new)))
        if odd:
            raise ScmError(
                f"{tag} changes {', '.join(odd)}, which {'is' if len(odd) == 1 else 'are'} not a plain file "
                "(a submodule): revert it by hand.",
                kind="conflict",
            )
        elements = [
            InputGitTreeElement(path, old[path].mode, "blob", sha=old[path].sha)
            if path in old
            else InputGitTreeElement(path, "100644", "blob", sha=None)
            for path in sorted(paths)
        ]
        tip_commit = self._repo.get_git_commit(tip)
        tree = self._repo.create_git_tree(elements, base_tree=self._repo.get_git_tree(tip_commit.tree.sha))
        undo = self._repo.create_git_commit(
            f"Revert {tag}\n\nThis reverts the release {tag} ({release}).", tree, [tip_commit]
        )
        try:
            self._repo.create_git_ref(f"refs/heads/{branch}", undo.sha)
        except GithubException as error:
            if error.status != 422:
                raise
            self._repo.get_git_ref(f"heads/{branch}").edit(undo.sha, force=True)
        pull = self._repo.create_pull(
            base=target, head=branch, title=f"Revert {tag}", body=f"Reverts the release {tag} ({release})."
        )
        return Reverted(commit=undo.sha, url=pull.html_url)

    def _tree(self, sha: str, tag: str) -> dict:
        """Every entry of a tree, recursively, by path; refused when GitHub cut the listing short
        (a path missing from it would be reverted as deleted)."""
        tree = self._repo.get_git_tree(sha, recursive=True)
        if tree.truncated:
            raise self._too_large(tag, "GitHub lists its tree only in part")
        return {e.path: e for e in tree.tree}

    @staticmethod
    def _too_large(tag: str, why: str) -> ScmError:
        return ScmError(
            f"{tag} is too large to revert through the API ({why}): revert it by hand.", kind="conflict"
        )

    # Actions.

    @_speaks("run the workflow", "actions: write")
    def workflow_dispatch(self, workflow: str, ref: str, inputs: dict[str, str]) -> str:
        """Runs `workflow` (its file name or id) on the branch or tag `ref` with `inputs`, through its
        `workflow_dispatch` trigger. Returns the address of the run it started where GitHub says
        which one (github.com does since February 2026), else "" (an older GitHub Enterprise
        Server, which refuses to be asked): the run is then found among `workflow_runs`."""
        from github import GithubException

        target = self._repo.get_workflow(workflow)
        try:
            try:
                run = target.create_dispatch(ref, inputs, throw=True, return_run_details=True)
            except GithubException as error:
                if error.status not in (400, 422) or "return_run_details" not in str(error.data):
                    raise
                run = target.create_dispatch(ref, inputs, throw=True)
        except GithubException as error:
            raise self._dispatch_refusal(error, workflow, ref) from None
        return "" if run is True else run.html_url

    def _dispatch_refusal(self, error, workflow: str, ref: str) -> ScmError:
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

    @_speaks("read the workflow's runs", "actions: read")
    def workflow_runs(self, workflow: str, *, ref: str, since: datetime) -> list[WorkflowRun]:
        """The runs of `workflow` dispatched on `ref` and created at or after `since`, newest first:
        GitHub's first page (100 runs), more than a deployment's minute of dispatches."""
        runs = self._repo.get_workflow(workflow).get_runs(
            event="workflow_dispatch",
            branch=short_ref(ref),
            created=f">={since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
        )
        return [_workflow_run(run) for run in itertools.islice(runs, 100)]

    @_speaks("read the workflow run", "actions: read")
    def workflow_run(self, run_id: int) -> WorkflowRun:
        return _workflow_run(self._repo.get_workflow_run(run_id))


def _workflow_run(run) -> WorkflowRun:
    return WorkflowRun(
        id=run.id,
        url=run.html_url or "",
        status=run.status or "",
        conclusion=run.conclusion or "",
        title=run.display_title or "",
        name=run.name or "",
        created_at=run.created_at,
    )


def _rate_limit_ends(headers: dict[str, str]) -> datetime:
    """When a rate-limited step may run again, as GitHub documents it: after `Retry-After`
    seconds (a secondary limit), else at `X-RateLimit-Reset` once `X-RateLimit-Remaining` is 0,
    else in a minute; never sooner than a second from now."""
    now = datetime.now(tz=UTC)
    after, reset = headers.get("retry-after", "").strip(), headers.get("x-ratelimit-reset", "").strip()
    at = None
    if re.fullmatch(r"[0-9]{1,9}", after):
        at = now + timedelta(seconds=int(after))
    elif after:
        at = _http_date(after)  # the other form HTTP allows
    if at is None and headers.get("x-ratelimit-remaining") == "0" and re.fullmatch(r"[0-9]{1,12}", reset):
        at = datetime.fromtimestamp(int(reset), tz=UTC)
    return max(at or now + timedelta(seconds=60), now + timedelta(seconds=1))


def _http_date(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def configured() -> bool:
    """Whether releases are cut in a repository (GitHub, or one on disk)."""
    from django.conf import settings

    return bool(settings.GITHUB_REPOSITORY or settings.GIT_REPOSITORY_PATH)


def repository():
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
