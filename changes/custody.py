"""The chain of custody of a change's code: the commit its quorum approved, the commit the release
merged, the tag on that merge, the version each deployment put on a colour. Each link is checked
against the one before it, in the repository itself, so that what ships is what was approved.

Before a deploy starts, the links that exist yet are checked live: the approved commit is still the
head of the source branch (no commit arrived that nobody approved), and the revert of any release
rolled back in the environment is on its branch (a revert pull request on GitHub, merged).
"""

from integrations import scm as scm_

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
    repository = scm or scm_.repository()
    try:
        head = repository.head(change.source_branch)
    except scm_.ScmError as refused:
        return [f"Approved commit: the head of {change.source_branch} could not be read ({refused})."]
    if head != approved:
        return [
            f"Approved commit: {change.source_branch} moved to {head[:10]} after {approved[:10]} was "
            "approved; the new commits must be approved before anything ships."
        ]
    return _reverts_pending(change, repository)


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


MATCHES = "matches"


def _link(name: str, value: str, verdict: str, **detail) -> dict:
    """One link of the chain: what it is, its value, and its verdict against the link before it
    ("matches", "differs: …", or "not yet" for a step still to come)."""
    return {"link": name, "value": value, "verdict": verdict, **detail}


def chain(change, *, repository=None) -> list[dict]:
    """The chain of custody of the change, link by link, each judged against the one before it.
    With `repository`, the merge's parents and the tag are read from it; without, from what the
    release recorded."""
    from changes.models import Release
    from changes.quorum import quorum_summary
    from changes.soak import soak_of
    from portal import clock

    approved = change.approved_commit
    approvals = [
        a
        for a in change.approvals.select_related("approver")  # one query, whoever fetched the change
        if a.dismissed_at is None and a.commit == approved
    ]
    summary = quorum_summary(change, approvals, change.environment.approval_policy) if approved else None
    links = [
        _link(
            "Approved commit",
            approved,
            MATCHES
            if summary and summary.satisfied
            else f"differs: {summary.explain() if summary else 'none'}",
            approvals=[
                {
                    "by": a.approver.username,
                    "capacity": a.capacity,
                    "at": a.created_at.isoformat(),
                    "second_factor": a.second_factor,
                }
                for a in approvals
                if a.decision == "approve"
            ],
        )
    ]
    soak = soak_of(change, now=clock.now())
    soaked = soak.commit == approved and soak.open
    links.append(
        _link(
            "Staging soak",
            soak.commit,
            MATCHES if soaked else f"differs: {soak.message}",
            message=soak.message,
        )
    )
    release = Release.objects.filter(change=change).first()
    if release is None or release.merged_at is None:
        links.append(_link("Merge", "", "not yet"))
        links.append(_link("Tag", "", "not yet"))
    else:
        parents = repository.parents(release.merge_commit) if repository else []
        merged = parents[1:2] == [approved] if repository else release.head_commit == approved
        links.append(
            _link(
                "Merge",
                release.merge_commit,
                MATCHES
                if merged
                else f"differs: it merges {(parents[1:2] or [release.head_commit])[0][:10]}, "
                f"not the approved {approved[:10]}",
                parents=parents,
            )
        )
        if release.tagged_at is None:
            links.append(_link("Tag", release.version, "not yet"))
        else:
            points_at = repository.tag_commit(release.version) if repository else release.merge_commit
            links.append(
                _link(
                    "Tag",
                    release.version,
                    MATCHES
                    if points_at == release.merge_commit
                    else f"differs: {release.version} points at {(points_at or 'nothing')[:10]}",
                    points_at=points_at,
                )
            )
    for deployment in change.deployments.order_by("pk"):
        if not deployment.version:
            links.append(_link(f"Deployment {deployment.pk}", "", "not yet", colour=deployment.to_colour))
            continue
        shipped = release is not None and deployment.version == release.version
        links.append(
            _link(
                f"Deployment {deployment.pk}",
                deployment.version,
                MATCHES if shipped else f"differs: it deployed {deployment.version}, not the tag",
                colour=deployment.to_colour,
                state=deployment.state,
            )
        )
    return links


def broken(links: list[dict]) -> list[str]:
    """The links that differ, in words."""
    return [f"{link['link']}: {link['verdict']}" for link in links if link["verdict"].startswith("differs")]
