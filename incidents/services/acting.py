"""Acting from the incident: the deployment it follows goes back, the code is reverted; and the
incident a deployment that rolled back by itself opens."""

from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction

from incidents.models import Incident, IncidentStatus, Severity, TimelineEntry
from incidents.services.base import IncidentRefused, timeline_add
from incidents.services.lifecycle import incident_declare
from portal.models import User
from portal.roles import Right, has_right, missing_right_message
from portal.services import audit_record

if TYPE_CHECKING:
    from celery import Task

    from deployments.models import Deployment


def incident_for_rollback(deployment: "Deployment") -> Incident:
    """The P1 a deployment that rolled back by itself opens (in the engine's transaction), linked to
    it, its change and the change's services."""
    change = deployment.change
    first_traffic = deployment.stages.filter(kind="traffic").order_by("started_at").first()
    return incident_declare(
        actor=None,
        title=f"{change.number} rolled back by itself in {deployment.environment}",
        severity=Severity.P1,
        summary=deployment.rollback_reason or deployment.error,
        services=list(change.services.all()),
        source=Incident.Source.DEPLOYMENT,
        deployment=deployment,
        change=change,
        started_at=first_traffic.started_at if first_traffic else None,
    )


# Acting from the incident: the deployment it follows goes back, the code is reverted, an
# emergency change is filed (that one through the change form, linked back on its creation).


def incident_rollback(*, actor: User, incident: Incident, reason: str, revert: bool = False) -> "Deployment":
    """Rolls back the deployment the incident follows (release managers; SREs while the incident is
    open), with the deployments' own guards; on the timeline and audited with the rollback, in one
    transaction with the incident locked."""
    from deployments.services import DeployRefused, deployment_rollback

    try:
        with transaction.atomic():
            locked = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
            follows = locked.deployment
            if follows is None:
                raise IncidentRefused(
                    f"{locked.number} follows no deployment: there is nothing to roll back."
                )
            if locked.status == IncidentStatus.RESOLVED:
                raise IncidentRefused(f"{locked.number} is resolved: roll back from the deployment's page.")
            deployment = deployment_rollback(
                actor=actor, deployment=follows, reason=f"{locked.number}: {reason}", revert=revert
            )
            audit_record(
                actor=actor,
                action="incident.rollback",
                target=locked,
                after={"deployment": deployment.pk, "reason": reason, "revert": revert},
            )
            also = " and its code reverted" if revert else ""
            timeline_add(
                locked,
                TimelineEntry.Kind.ROLLBACK,
                f"Rollback of {deployment.version or 'the deployment'} in {deployment.environment}{also} "
                f"asked by {actor.display_name}: {reason}",
                actor=actor,
                deployment=deployment.pk,
            )
    except DeployRefused as refused:
        raise IncidentRefused(" ".join(refused.reasons)) if refused.conflict else refused from None
    return deployment


def may_revert(user: User | AnonymousUser) -> bool:
    """Whoever may roll deployments back may revert their code: release managers, SREs."""
    return has_right(user, Right.DEPLOYMENT_ROLLBACK) or has_right(user, Right.DEPLOYMENT_ROLLBACK_INCIDENT)


@transaction.atomic
def incident_revert(*, actor: User, incident: Incident) -> None:
    """Asks for the code revert of the release the incident follows (a revert commit on a repository
    on disk, a pull request on GitHub), made by a task: the timeline says when it is asked and what
    came of it. Asking again before that is refused."""
    from changes.models import Release

    if not may_revert(actor):
        raise PermissionDenied(missing_right_message(Right.DEPLOYMENT_ROLLBACK))
    locked = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    release = Release.objects.filter(change_id=locked.change_id, tagged_at__isnull=False).first()
    if release is None:
        raise IncidentRefused(f"{locked.number} follows no tagged release: there is no code to revert.")
    said = locked.timeline.filter(kind=TimelineEntry.Kind.ROLLBACK, data__version=release.version)
    last = said.order_by("-at", "-id").first()
    if last is not None and last.data.get("asked"):
        raise IncidentRefused(
            f"The revert of {release.version} is asked for already: its outcome comes next."
        )
    audit_record(actor=actor, action="incident.revert", target=locked, after={"version": release.version})
    timeline_add(
        locked,
        TimelineEntry.Kind.ROLLBACK,
        f"Code revert of {release.version} asked by {actor.display_name}.",
        actor=actor,
        version=release.version,
        asked=True,
    )
    transaction.on_commit(lambda: _revert_task().delay(locked.pk, actor.pk))


def _revert_task() -> "Task[[int, int], str]":
    from incidents.tasks import incident_revert_run

    return incident_revert_run


def incident_revert_run(incident_id: int, actor_id: int) -> str:
    """The revert an incident asked for, in the repository; its outcome on the timeline. Returns
    what happened, in words."""
    from django.contrib.auth import get_user_model

    from changes import releases
    from integrations import scm

    incident = Incident.objects.select_related("change").get(pk=incident_id)
    change = incident.change
    assert change is not None  # asked only for an incident whose change was released
    actor = get_user_model().objects.get(pk=actor_id)
    try:
        reverted = releases.release_revert(actor=actor, change=change, scm=scm.repository())
    except releases.RepositoryRefused as refused:
        if refused.transient:
            raise
        words = f"The code revert failed: {refused.messages[0]}"
    except (releases.ChangeError, scm.ScmError) as refused:
        words = f"The code revert failed: {refused.messages[0] if hasattr(refused, 'messages') else refused}"
    else:
        words = (
            f"Revert opened: {reverted.url}"
            if reverted.url
            else f"Reverted in commit {reverted.commit[:10]}."
        )
    with transaction.atomic():
        version = change.release.version if hasattr(change, "release") else ""
        timeline_add(incident, TimelineEntry.Kind.ROLLBACK, words, version=version, outcome=True)
    return words
