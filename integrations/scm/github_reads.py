"""Reading a repository on GitHub: branches, tags, commits and their signatures, a pull request
with its checks, reviews and code owners."""

from typing import TYPE_CHECKING

from integrations.scm.base import (
    CODEOWNERS_PATHS,
    PULL_COMMITS_LIMIT,
    Check,
    PullRequestReport,
    Review,
    ScmError,
)
from integrations.scm.codeowners import code_owners, individual_logins
from integrations.scm.github_client import GitHubClient, speaks
from integrations.scm.refs import checked_ref

if TYPE_CHECKING:
    from github.PullRequest import PullRequest


class GitHubReads(GitHubClient):
    @speaks("read a branch", "contents: read")
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

    @speaks("list the tags", "contents: read")
    def tags(self) -> set[str]:
        return {tag.name for tag in self._repo.get_tags()}

    @speaks("read a tag", "contents: read")
    def tag_commit(self, name: str) -> str | None:
        from github import UnknownObjectException

        try:
            target = self._repo.get_git_ref(f"tags/{name}").object
        except UnknownObjectException:
            return None
        return self._repo.get_git_tag(target.sha).object.sha if target.type == "tag" else target.sha

    @speaks("find the last release", "contents: read")
    def last_tag(self, branch: str) -> str | None:
        """The highest version tag reachable from the branch (tags that are not versions are
        not releases), or None before the first release."""
        from integrations.scm.versions import Version, VersionRefused

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

    @speaks("compare commits", "contents: read")
    def is_merged(self, commit: str, target: str) -> bool:
        from github import UnknownObjectException

        try:
            return self._repo.compare(commit, target).status in ("ahead", "identical")
        except UnknownObjectException:
            return False

    @speaks("read a commit", "contents: read")
    def parents(self, commit: str) -> list[str]:
        return [parent.sha for parent in self._repo.get_commit(commit).parents]

    def only_merges_target(self, before: str, after: str, target: str) -> bool:
        """GitHub cannot redo a merge without writing one, so a push is never taken to only merge
        the target in: new commits always dismiss the portal's approvals (GitHub's branch
        protection rules its own reviews)."""
        return False

    @speaks("read commit signatures", "contents: read")
    def unsigned_commits(self, source: str, target: str) -> list[str]:
        """The commits the merge would bring that GitHub does not show as verified."""
        commits = self._repo.compare(target, source).commits
        return [c.sha for c in commits if not c.commit.verification.verified]

    @speaks("find the pull request that merged a commit", "pull requests: read")
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

    @speaks("read the pull request", "pull requests: read, checks: read")
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

    def _pull(
        self, source: str, target: str, *, number: int | None, title: str, body: str
    ) -> "PullRequest | None":
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
                found = self._repo.get_contents(path, ref=ref)
            except UnknownObjectException:
                continue
            if not isinstance(found, list):  # a list is a directory of that name: not a CODEOWNERS file
                return found.decoded_content.decode()
        return ""

    def _owner_logins(self, owners: list[str]) -> tuple[list[str], list[str]]:
        """The people among the owners, `@login` as is and `@org/team` by its members; and the
        teams the token may not read or that do not exist (403, 404), which stay named only by
        the team. Any other refusal (a rate limit, a bad token, an outage) stops the read."""
        from github import GithubException

        logins = individual_logins(owners)
        unresolved: list[str] = []
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
