"""A repository on disk, driven with the `git` command: the demo's, and that of a team without
GitHub."""

import subprocess
from pathlib import Path

from integrations.scm.base import (
    CODEOWNERS_PATHS,
    DEFAULT_IDENTITY,
    NOTES_COMMITS,
    PULL_COMMITS_LIMIT,
    Identity,
    PullRequestReport,
    Reverted,
    ScmError,
)
from integrations.scm.codeowners import code_owners, individual_logins
from integrations.scm.notes import commits_in_notes, notes_line, notes_within_limit
from integrations.scm.refs import checked_ref


def _records(output: str) -> list[list[str]]:
    """The NUL-separated fields of each line of git's output."""
    return [line.split("\0") for line in output.splitlines() if line]


class LocalGit:
    """A repository on disk, driven with the `git` command."""

    def __init__(self, path: str | Path, *, identity: Identity = DEFAULT_IDENTITY, allowed_signers: str = ""):
        self.path = Path(path)
        self.identity = identity
        self.allowed_signers = allowed_signers  # for SSH signatures: the file `git verify-commit` trusts

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
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
            "log",
            "--reverse",
            f"--max-count={PULL_COMMITS_LIMIT + 1}",
            "--format=%H%x00%s",
            f"{self.head(target)}..{head}",
        )
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
        lines = [notes_line(subject, sha, author) for sha, author, subject in _records(log.stdout)]
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
