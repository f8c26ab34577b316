"""The code half of a rollback: the release reverted in the repository."""

import logging

from django.core.exceptions import PermissionDenied
from django.db import transaction

from changes.models import ChangeRequest, Release
from changes.releases.base import repository_says
from changes.releases.cutting import step_done
from changes.services import ChangeError, _notify
from integrations.scm.base import Repository, Reverted
from portal import clock
from portal.models import User
from portal.roles import Right, has_right, missing_right_message

logger = logging.getLogger(__name__)


@transaction.atomic
def release_revert(*, actor: User, change: ChangeRequest, scm: Repository) -> Reverted:
    """Undoes a released change in the repository (the code half of a rollback; traffic goes back
    through the deployment): one revert commit on the target branch in a repository on disk, a
    pull request carrying it on GitHub. Returns what was made (`commit`, and `url` on GitHub)."""
    if not (
        has_right(actor, Right.DEPLOYMENT_ROLLBACK) or has_right(actor, Right.DEPLOYMENT_ROLLBACK_INCIDENT)
    ):
        raise PermissionDenied(missing_right_message(Right.DEPLOYMENT_ROLLBACK))
    release = Release.objects.select_for_update().filter(change=change).first()
    if release is None or release.tagged_at is None:
        raise ChangeError(f"{change.number} has no tagged release to revert.", conflict=True)
    with repository_says(f"Revert of {release.version}"):
        reverted = scm.revert(release.version, change.target_branch)
    # The environment's branch is no longer ahead of live by this release once the revert is on it.
    release.reverted_commit, release.reverted_url = reverted.commit, reverted.url
    release.reverted_at = clock.now()
    release.save(update_fields=["reverted_commit", "reverted_url", "reverted_at"])
    step_done(
        actor=actor,
        action="release.revert",
        target=change,
        after={"version": release.version, "commit": reverted.commit, "url": reverted.url},
    )
    where = f"opened {reverted.url} to revert" if reverted.url else "reverted"
    _notify(
        change,
        f"{release.version} reverted ({change.number})",
        f"{actor.display_name} {where} {release.version} on {change.target_branch}.",
    )
    return reverted
