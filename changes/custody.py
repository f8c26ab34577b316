"""The chain of custody of a change's code: the commit its quorum approved, the commit the release
merged, the tag on that merge, the version each deployment put on a colour. Each link is checked
against the one before it, in the repository itself, so that what ships is what was approved.

Before a deploy starts, the links that exist yet are checked live: the approved commit is still the
head of the source branch (no commit arrived that nobody approved), and the revert of any release
rolled back in the environment is on its branch (a revert pull request on GitHub, merged).
"""

from changes import scm as scm_

# Reverts checked at each deploy, newest first: those of the releases rolled back most recently.
REVERTS_CHECKED = 20


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
    return _reverts_pending(change, scm or scm_.repository())


def _reverts_pending(change, repository) -> list[str]:
    """The reverts of rolled-back releases that are not on the environment's branch yet."""
    from changes.choices import ChangeStatus
    from changes.models import Release

    reverted = (
        Release.objects.filter(
            change__environment_id=change.environment_id,
            change__status__in=[ChangeStatus.ROLLED_BACK, ChangeStatus.FAILED],
            reverted_at__isnull=False,
        )
        .exclude(change_id__in=[change.pk, change.fixes_forward_id or 0])
        .select_related("change")
        .order_by("-merged_at")[:REVERTS_CHECKED]
    )
    refusals = []
    for release in reverted:
        try:
            landed = repository.is_merged(release.reverted_commit, change.target_branch)
        except scm_.ScmError as refused:
            landed, why = False, f" (could not be read: {refused})"
        else:
            why = ""
        if not landed:
            where = release.reverted_url or release.reverted_commit[:10]
            refusals.append(
                f"Live version: the revert of {release.version} ({release.change.number}, rolled back) is "
                f"not on {change.target_branch} yet{why}: merge {where} first."
            )
    return refusals
