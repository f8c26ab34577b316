"""Releasing in a repository on GitHub: merge the pull request, tag the merge, write and publish the
notes, open a revert."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from integrations.scm.base import COMPARE_FILES_LIMIT, NOTES_COMMITS, Reverted, ScmError
from integrations.scm.github_client import speaks
from integrations.scm.github_reads import GitHubReads
from integrations.scm.notes import checks_in_words, commits_in_notes, notes_line, notes_within_limit

if TYPE_CHECKING:
    from github.Commit import Commit
    from github.GitTreeElement import GitTreeElement
    from github.PaginatedList import PaginatedList
    from github.PullRequest import PullRequest


class GitHubReleases(GitHubReads):
    """Releasing builds on reading: the pull request, its checks, the head of a branch."""

    @speaks("merge the pull request", "contents: write, pull requests: write")
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
        assert pull is not None  # with a title, one is opened when there is none
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
    def _conflict(pull: "PullRequest", source: str, target: str) -> ScmError:
        return ScmError(
            f"Pull request #{pull.number} ({source} into {target}) has conflicts. Merge {target} into "
            f"{source}, resolve them, and let staging soak again.",
            kind="conflict",
        )

    @speaks("create the tag", "contents: write")
    def tag(self, name: str, commit: str, message: str) -> None:
        """An annotated tag object on the commit, and the ref that names it."""
        from github import InputGitAuthor

        tagger = InputGitAuthor(self.identity.name, self.identity.email)
        tag = self._repo.create_git_tag(name, message, commit, "commit", tagger=tagger)
        self._repo.create_git_ref(f"refs/tags/{name}", tag.sha)

    @speaks("write the release notes", "contents: write")
    def release_notes(self, previous_tag: str | None, commit: str, *, version: str = "") -> str:
        """GitHub's own notes (the pull requests merged since the previous tag), then the commits
        newest first: the newest NOTES_COMMITS that are not merges, and how many more there are
        (read page by page and no further, so a first release does not page through the whole
        history)."""
        pulls = ""
        newest_first: PaginatedList[Commit]
        total: Callable[[], int]
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
        lines: list[str] = []
        seen = 0
        for c in newest_first:
            seen += 1
            if len(c.parents) < 2:
                message = c.commit.message.splitlines() or [""]
                lines.append(notes_line(message[0], c.sha, c.commit.author.name))
                if len(lines) == NOTES_COMMITS:
                    break
        more = total() - seen if len(lines) == NOTES_COMMITS else 0
        return notes_within_limit(
            "\n\n".join(part for part in (pulls, "## Commits\n" + commits_in_notes(lines, more)) if part)
        )

    @speaks("publish the release", "contents: write")
    def publish(self, tag: str, notes: str) -> str:
        """The GitHub release of the tag with the notes (the one there already, after a retry)."""
        from github import UnknownObjectException

        try:
            return self._repo.get_release(tag).html_url
        except UnknownObjectException:
            return self._repo.create_git_release(tag, name=tag, message=notes).html_url

    @speaks("open the revert", "contents: write, pull requests: write")
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

    def _tree(self, sha: str, tag: str) -> "dict[str, GitTreeElement]":
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
