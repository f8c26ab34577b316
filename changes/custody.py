"""The chain of custody of a change's code: the commit its quorum approved, the commit the release
merged, the tag on that merge, the version each deployment put on a colour. Each link is checked
against the one before it, in the repository itself, so that what ships is what was approved.

Before a deploy starts, the links that exist yet are checked live: the approved commit is still the
head of the source branch (no commit arrived that nobody approved).
"""

from changes import scm as scm_


def deploy_refusals(change, *, scm=None) -> list[str]:
    """Why the change's code may not ship now, read live from the repository (nothing when it may,
    or when no repository is configured)."""
    if not scm_.configured():
        return []
    approved = change.approved_commit
    if not approved:
        return [f"Approved commit: {change.number} was approved on no commit; approve it on its head."]
    try:
        head = (scm or scm_.repository()).head(change.source_branch)
    except scm_.ScmError as refused:
        return [f"Approved commit: the head of {change.source_branch} could not be read ({refused})."]
    if head != approved:
        return [
            f"Approved commit: {change.source_branch} moved to {head[:10]} after {approved[:10]} was "
            "approved; the new commits must be approved before anything ships."
        ]
    return []
