"""The source repository a release is cut in: read a change's pull request (checks, reviews, code
owners of the changed files, signatures), merge staging into main, tag the merge, write the notes,
revert a release. One interface, two backends: GitHub (through PyGithub) and a repository on disk
(the `git` command), for the demo and for teams without GitHub. Adapters only: no database here;
the services record what they learn and each release step.
"""

import functools
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pathspec import GitIgnoreSpec

# Where GitHub looks for the code owners file, in its order.
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")


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
        return self.status == "completed" and self.conclusion in ("success", "neutral", "skipped")


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
    checks: list[Check] = field(default_factory=list)
    required_checks: list[str] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)  # CODEOWNERS entries owning the changed files
    owner_logins: list[str] = field(default_factory=list)  # the people among them, teams expanded
    unsigned: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reverted:
    commit: str
    url: str = ""  # the pull request that carries the revert, where there is one


def code_owners(codeowners: str, paths: list[str]) -> list[str]:
    """The owners of `paths` by a CODEOWNERS file: for each path the last rule that matches it
    (gitignore patterns) names its owners; a rule with no owner leaves the path unowned."""
    rules = []
    for line in codeowners.splitlines():
        parts = line.split("#", 1)[0].split()
        if parts:
            rules.append((GitIgnoreSpec.from_lines([parts[0]]), parts[1:]))
    owners: list[str] = []
    for path in paths:
        matching = [names for spec, names in rules if spec.match_file(path)]
        for owner in matching[-1] if matching else []:
            if owner not in owners:
                owners.append(owner)
    return owners


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

    def merge_that_brought(self, commit: str, target: str) -> str | None:
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

    def pull_request(
        self, source: str, target: str, *, number: int | None = None, title: str = "", body: str = ""
    ) -> PullRequestReport:
        """A repository on disk has no pull requests, checks or reviews: what it can say is whether
        the branches merge, who owns the changed files, and which commits are not signed."""
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
        )

    def _codeowners(self, ref: str) -> str:
        for path in CODEOWNERS_PATHS:
            result = self._git("show", f"{ref}:{path}", check=False)
            if result.returncode == 0:
                return result.stdout
        return ""

    def merge(self, source: str, target: str, message: str, *, head: str = "") -> str:
        """A merge commit of `source` (at `head` when given: the commit that was checked) into
        `target`, never a fast-forward, so a release is one commit to tag and to revert; a conflict
        leaves the target as it was."""
        head = head or self.head(source)
        self._git("checkout", "--quiet", target)
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
        """The commits since the previous release, newest first, one line each."""
        span = f"{previous_tag}..{commit}" if previous_tag else commit
        lines = self._git("log", "--no-merges", "--format=- %s (%h, %an)", span).stdout.strip()
        return lines or "- No changes since the previous release."

    def revert(self, tag: str, target: str) -> Reverted:
        """A commit on `target` that undoes the release `tag` (its merge, against the first parent)."""
        commit = self.tag_commit(tag)
        if commit is None:
            raise ScmError(f"There is no release {tag} to revert.", kind="missing")
        self._git("checkout", "--quiet", target)
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
        )
        self._repo = self._github.get_repo(full_name)

    def _refusal(self, error, action: str, permission: str) -> ScmError:
        from github import BadCredentialsException, RateLimitExceededException

        headers = {k.lower(): v for k, v in (error.headers or {}).items()}
        message = (error.data or {}).get("message", "") if isinstance(error.data, dict) else str(error.data)
        if isinstance(error, RateLimitExceededException) or (
            error.status in (403, 429)
            and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers)
        ):
            if "x-ratelimit-reset" in headers:
                retry_at = datetime.fromtimestamp(int(headers["x-ratelimit-reset"]), tz=UTC)
            else:
                retry_at = datetime.now(tz=UTC) + timedelta(seconds=int(headers.get("retry-after", 60)))
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

    @_speaks("read commit signatures", "contents: read")
    def unsigned_commits(self, source: str, target: str) -> list[str]:
        """The commits the merge would bring that GitHub does not show as verified."""
        commits = self._repo.compare(target, source).commits
        return [c.sha for c in commits if not c.commit.verification.verified]

    @_speaks("find the pull request that merged a commit", "pull requests: read")
    def merge_that_brought(self, commit: str, target: str) -> str | None:
        for pull in self._repo.get_commit(commit).get_pulls():
            if pull.merged_at is not None and pull.base.ref == target and pull.head.sha == commit:
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
            return PullRequestReport(head=head, checks=self._checks(head))
        head = pull.head.sha
        changed = [f.filename for f in pull.get_files()]
        owners = code_owners(self._codeowners(target), changed)
        return PullRequestReport(
            head=head,
            number=pull.number,
            url=pull.html_url,
            mergeable=pull.mergeable,
            checks=self._checks(head),
            required_checks=self._required_checks(target),
            reviews=[
                Review(
                    login=r.user.login.lower(),
                    state=r.state,
                    commit=r.commit_id or "",
                    submitted_at=r.submitted_at.isoformat() if r.submitted_at else "",
                )
                for r in pull.get_reviews()
            ],
            changed_files=changed,
            owners=owners,
            owner_logins=self._owner_logins(owners),
            unsigned=[c.sha for c in pull.get_commits() if not c.commit.verification.verified],
        )

    def _pull(self, source: str, target: str, *, number: int | None, title: str, body: str):
        from github import GithubException

        if number:
            return self._repo.get_pull(number)
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

    def _owner_logins(self, owners: list[str]) -> list[str]:
        """The people among the owners: `@login` as is, `@org/team` by its members (a team the
        token may not read stays named only by the team)."""
        from github import GithubException

        logins = individual_logins(owners)
        for owner in owners:
            if owner.startswith("@") and "/" in owner:
                org, slug = owner[1:].split("/", 1)
                try:
                    members = self._github.get_organization(org).get_team_by_slug(slug).get_members()
                    logins += [m.login.lower() for m in members if m.login.lower() not in logins]
                except GithubException:
                    continue
        return logins

    # Releasing.

    @_speaks("merge the pull request", "contents: write, pull requests: write")
    def merge(self, source: str, target: str, message: str, *, head: str = "") -> str:
        """Merges the pull request of `source` into `target` (opened when there is none) with a
        merge commit, only at `head` (the commit that was checked) and only with its checks
        passing; GitHub signs its merge commits."""
        from github import GithubException

        pull = self._pull(source, target, number=None, title=message, body="")
        head = head or pull.head.sha
        if pull.head.sha != head:
            raise ScmError(
                f"{source} moved to {pull.head.sha[:10]} after {head[:10]} was checked: the new commits "
                "must soak and be checked before they are released.",
                kind="conflict",
            )
        failing, running, missing = check_verdict(self._checks(head), self._required_checks(target))
        if failing or running or missing:
            said = [
                f"{label}: {', '.join(names)}"
                for label, names in (
                    ("failing", failing),
                    ("still running", running),
                    ("required but missing", missing),
                )
                if names
            ]
            raise ScmError(
                f"Checks on {head[:10]} do not all pass ({'; '.join(said)}): pull request #{pull.number} "
                "is not merged.",
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
        """GitHub's own notes (the pull requests merged since the previous tag), then the commits."""
        pulls = ""
        if version:
            since = {"previous_tag_name": previous_tag} if previous_tag else {}
            generated = self._repo.generate_release_notes(version, target_commitish=commit, **since)
            pulls = generated.body.strip()
        if previous_tag:
            commits = self._repo.compare(previous_tag, commit).commits
        else:
            commits = self._repo.get_commits(sha=commit)
        lines = [
            f"- {c.commit.message.splitlines()[0]} ({c.sha[:7]}, {c.commit.author.name})"
            for c in commits
            if len(c.parents) < 2
        ]
        listed = "\n".join(reversed(lines)) if previous_tag else "\n".join(lines)
        return "\n\n".join(
            part
            for part in (pulls, "## Commits\n" + (listed or "- No changes since the previous release."))
            if part
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
        before = self._repo.get_git_commit(release).parents[0].sha
        changed = self._repo.compare(before, release).files
        paths = {f.filename for f in changed} | {f.previous_filename for f in changed if f.previous_filename}
        tip = self.head(target)
        if tip != release:
            since = self._repo.compare(release, tip).files
            clash = sorted(paths & ({f.filename for f in since} | {f.previous_filename for f in since}))
            if clash:
                raise ScmError(
                    f"{tag} does not revert cleanly on {target}: later changes touch {', '.join(clash)}.",
                    kind="conflict",
                )
        old_tree = self._repo.get_git_commit(before).tree.sha
        old = {e.path: e for e in self._repo.get_git_tree(old_tree, recursive=True).tree if e.type == "blob"}
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


def repository():
    """The repository releases are cut in, from the settings: GitHub when GITHUB_REPOSITORY is set,
    else the repository on disk at GIT_REPOSITORY_PATH."""
    from django.conf import settings

    if settings.GITHUB_REPOSITORY:
        if not settings.GITHUB_TOKEN:
            raise ScmError("GITHUB_REPOSITORY is set but GITHUB_TOKEN is not: set a token.", kind="token")
        return GitHub(
            settings.GITHUB_REPOSITORY, token=settings.GITHUB_TOKEN, api_url=settings.GITHUB_API_URL
        )
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
