"""The source repository a release is cut in: merge staging into main, tag the merge, write the
notes, check that every commit is signed, revert a release. One interface, two backends: GitHub
(through PyGithub) and a repository on disk (the `git` command), for the demo and for teams
without GitHub. Adapters only: no database here; the release service records each step.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path


class ScmError(Exception):
    """A step the repository refused, in words a person acts on; `kind` names what went wrong
    (conflict, unsigned, checks, token, rate_limit, network, missing)."""

    def __init__(self, message: str, *, kind: str):
        super().__init__(message)
        self.kind = kind


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

    def merge(self, source: str, target: str, message: str) -> str:
        """A merge commit of `source` into `target` (never a fast-forward, so a release is one
        commit to tag and to revert); a conflict leaves the target as it was."""
        self.head(source)
        self._git("checkout", "--quiet", target)
        result = self._git("merge", "--no-ff", *self._sign(), "-m", message, source, check=False)
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

    def release_notes(self, previous_tag: str | None, commit: str) -> str:
        """The commits since the previous release, newest first, one line each."""
        span = f"{previous_tag}..{commit}" if previous_tag else commit
        lines = self._git("log", "--no-merges", "--format=- %s (%h, %an)", span).stdout.strip()
        return lines or "- No changes since the previous release."

    def revert(self, tag: str, target: str) -> str:
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
        return self.head(target)
