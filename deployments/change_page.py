"""What the deployments app adds to a change's page (portal.hooks.change_page; connected in
config.wiring): the change's latest deployments, the chain of custody as the latest of them
checked it in the repository, and, for those who deploy, the Deploy panel with what stands in
its way."""

from changes import snapshots
from changes.choices import ChangeStatus
from changes.models import ChangeRequest
from deployments.models import Deployment
from deployments.services import deploy_refusals
from portal.forms import OTPForm
from portal.models import User
from portal.roles import Right

# The change page lists its latest deployments, this many, and what it says of them.
DEPLOYMENTS_SHOWN = 10
DEPLOYMENT_SHOWS = [
    "id",
    "change_id",
    "version",
    "state",
    "created_at",
    "report",
    "custody",
    "custody_checked_at",
]
DEPLOYABLE = (ChangeStatus.SCHEDULED, ChangeStatus.APPROVED)


def latest_deployments(change: ChangeRequest) -> list[Deployment]:
    """The change's latest deployments (newest first), kept in the cache beside the change until a
    write to one of them (changes/snapshots.py)."""

    def read():
        # Not through change.deployments, which would hang the change on each (and in the cache).
        return list(
            Deployment.objects.filter(change_id=change.pk).only(*DEPLOYMENT_SHOWS)[:DEPLOYMENTS_SHOWN]
        )

    return snapshots.shown(change.pk, read, part="deployments")


def change_page(*, change: ChangeRequest, user: User, gates: list[dict]) -> dict:
    deployments = latest_deployments(change)
    part: dict = {"deployments": deployments, "deploy": None}
    latest = next((d for d in deployments if d.custody), None)
    if latest is None and len(deployments) == DEPLOYMENTS_SHOWN:
        latest = change.deployments.exclude(custody=[]).first()
    if latest is not None:
        part["custody"] = {
            "links": latest.custody,
            "checked_at": latest.custody_checked_at,
            "deployment": latest,
        }
    if user.has_perm(Right.DEPLOYMENT_DEPLOY) and change.status in DEPLOYABLE:
        part["deploy"] = {"refusals": deploy_refusals(change, gates=gates), "form": OTPForm(prefix="deploy")}
    return part
