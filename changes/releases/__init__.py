"""The change's side in the repository: what its pull request says (checks, reviews, the code
owners of the changed files, signatures), read by a task and kept current by GitHub's events,
feeding the deploy gates; and the release itself, cut step by step once the change deploys, and
reverted. The repository is reached through `integrations.scm` (GitHub or a repository on disk).

    base           the repository's refusal of a step, in the change's words
    pull_requests  the pull request read and kept current; check runs and reviews recorded
    cutting        the release cut: head, merge, tag, notes
    revert         the release reverted
"""

from changes.releases.base import RepositoryRefused
from changes.releases.cutting import keep_error, release_cut, shas_in_words
from changes.releases.pull_requests import (
    changes_at_head,
    changes_of_pull_request,
    check_run_record,
    pull_request_number,
    pull_request_read,
    review_entry,
    review_record,
)
from changes.releases.revert import release_revert
from changes.services import ChangeError

__all__ = [
    "ChangeError",
    "RepositoryRefused",
    "changes_at_head",
    "changes_of_pull_request",
    "check_run_record",
    "keep_error",
    "pull_request_number",
    "pull_request_read",
    "release_cut",
    "release_revert",
    "review_entry",
    "review_record",
    "shas_in_words",
]
