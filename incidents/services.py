"""Every write to an incident: guarded, audited, and told on its timeline, in one transaction.

Declared by a person (who needs the right), by a deployment that rolled back by itself, or by an
alarm; then acknowledged, mitigated and resolved in that order (a step may be skipped, never
undone). Acknowledging a resolved incident, or resolving one twice, is refused with the reason."""

import json
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from incidents.models import ActionItem, Incident, IncidentStatus, PostMortem, Severity, TimelineEntry
from portal import clock
from portal.roles import Right, has_right, missing_right_message
from portal.services import audit_record, notification_send

# Where incidents are told on Slack, besides PagerDuty's page.
INCIDENT_CHANNEL = "#incidents"
# PagerDuty's severity for each of ours.
PAGE_SEVERITY = {Severity.P0: "critical", Severity.P1: "error", Severity.P2: "warning", Severity.P3: "info"}


class IncidentRefused(ValidationError):
    """The act clashes with the incident's state (a 409), in words."""

    def __init__(self, message: str):
        super().__init__(message)
        self.conflict = True


def page(incident: Incident, action: str) -> TimelineEntry:
    """Triggers, acknowledges or resolves the incident's page on PagerDuty (one dedup key for all
    three), sent by a task with retries after the caller's transaction; the timeline says so, and
    the page's delivery is followed on its notification."""
    event = {"event_action": action, "severity": PAGE_SEVERITY[incident.severity], "source": "greenlight"}
    sent = notification_send(
        channel="pagerduty",
        recipient=incident.dedup_key,
        subject=f"{incident.number} {incident.severity}: {incident.title}",
        body=json.dumps(event),
    )
    said = {"trigger": "Paged", "acknowledge": "Page acknowledged", "resolve": "Page resolved"}[action]
    return timeline_add(
        incident, TimelineEntry.Kind.PAGE, f"{said} on PagerDuty.", notification=sent.pk, action=action
    )


def timeline_add(
    incident: Incident, kind: str, text: str, *, actor=None, public: bool = False, **data
) -> TimelineEntry:
    """One entry on the incident's timeline (in the caller's transaction); a `public` one is an
    update the status page shows, when the incident itself is public, and its subscribers are
    e-mailed it once the caller's transaction commits."""
    entry = TimelineEntry.objects.create(
        incident=incident,
        at=clock.now(),
        kind=kind,
        actor=actor,
        text=text,
        data=data,
        public=public and incident.public,
    )
    if entry.public:
        transaction.on_commit(lambda: _public_update_told(entry.pk))
    return entry


def _public_update_told(entry_id: int) -> None:
    """Once a public update commits: the status page's kept copy is stale from now on (the next
    request shows the update, whether or not a worker took the e-mails yet), and the subscribers
    are e-mailed by a task."""
    from incidents import status
    from incidents.tasks import status_update_send

    status.status_page_forget()
    status_update_send.delay(entry_id)


@transaction.atomic
def incident_declare(
    *,
    actor,
    title: str,
    severity: str,
    summary: str = "",
    services=(),
    public: bool = False,
    source: str = Incident.Source.PERSON,
    deployment=None,
    change=None,
    started_at=None,
    alarm: str = "",
) -> Incident:
    """Declares an incident (the portal itself when `actor` is None), linked to what it follows."""
    if actor is not None and not has_right(actor, Right.INCIDENT_DECLARE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_DECLARE))
    if public and actor is not None and not has_right(actor, Right.INCIDENT_MANAGE):
        raise PermissionDenied(
            "Only those who run incidents put one on the public status page: declare it, and an SRE "
            "publishes it."
        )
    if not title.strip():
        raise ValidationError("title: say what is broken.")
    if severity not in Severity.values:
        raise ValidationError(f"severity: one of {', '.join(Severity.values)}.")
    now = clock.now()
    change = change or (deployment.change if deployment is not None else None)
    if started_at is not None and started_at > now:
        raise ValidationError("started_at: the trouble cannot begin in the future.")
    incident = Incident.objects.create(
        title=title.strip()[:200],
        severity=severity,
        summary=summary.strip(),
        source=source,
        declared_by=actor,
        public=public,
        deployment=deployment,
        change=change,
        started_at=started_at,
        detected_at=now,
        created_at=now,
        alarm=alarm,
    )
    incident.services.set(services)
    audit_record(
        actor=actor,
        action="incident.declare",
        target=incident,
        after={
            "title": incident.title,
            "severity": severity,
            "source": source,
            "public": public,
            "services": sorted(s.name for s in services),
            "deployment": deployment.pk if deployment else None,
            "change": change.number if change else None,
        },
    )
    who = actor.display_name if actor is not None else Incident.Source(source).label
    timeline_add(
        incident,
        TimelineEntry.Kind.DECLARED,
        f"{severity} declared: {incident.title} ({who}).",
        actor=actor,
        public=True,
    )
    if deployment is not None:
        timeline_add(
            incident,
            TimelineEntry.Kind.LINK,
            f"Follows deployment {deployment.pk} of {deployment.change.number} ({deployment.version}) "
            f"to {deployment.environment}.",
            deployment=deployment.pk,
        )
    page(incident, "trigger")
    _tell_declared(incident, who)
    return incident


def _tell_declared(incident: Incident, who: str) -> None:
    """Slack's #incidents always, the alert channel too for a P0 or P1 (the deployment's
    environment's, else #production-alerts), and the people of the change it follows by e-mail."""
    from incidents.defaults import ALERT_CHANNEL, ALERT_SEVERITIES

    subject = f"{incident.number} {incident.severity} declared: {incident.title}"
    body = incident.summary or f"Declared by {who}."
    channels = [INCIDENT_CHANNEL]
    if incident.severity in ALERT_SEVERITIES:
        deployment = incident.deployment
        deploy = getattr(deployment.environment, "deploy_settings", None) if deployment else None
        channels.append(deploy.alert_channel if deploy and deploy.alert_channel else ALERT_CHANNEL)
    for channel in dict.fromkeys(channels):
        notification_send(channel="slack", recipient=channel, subject=subject, body=body)
    if incident.change is not None:
        people = [incident.change.requester, *incident.change.stakeholders.all()]
        for email in sorted({p.email for p in people if p.email}):
            notification_send(channel="email", recipient=email, subject=subject, body=body)


def _moved(
    actor, incident: Incident, status: str, *, stamp: str, note: str = "", by: str = "", paged: bool = False
) -> Incident:
    """Moves the incident on, if its status allows, stamping when; audited and on the timeline.
    `actor` is None when PagerDuty brought the step back (`by` says who there; `paged`: PagerDuty
    knows already, so the page is not told again)."""
    if actor is not None and not has_right(actor, Right.INCIDENT_MANAGE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_MANAGE))
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if not locked.can_transition_to(status):
            raise IncidentRefused(locked.transition_error(status))
        before = locked.status
        locked.status = status
        setattr(locked, stamp, clock.now())
        if status == IncidentStatus.ACKNOWLEDGED and locked.commander_id is None and actor is not None:
            locked.commander = actor  # whoever acknowledges first runs it, until someone takes command
            locked.responders.add(actor)
        locked.save(update_fields=["status", stamp, "commander"])
        audit_record(
            actor=actor,
            action=f"incident.{status}",
            target=locked,
            before={"status": before},
            after={"status": status, **({"note": note} if note else {}), **({"by": by} if by else {})},
        )
        who = actor.display_name if actor is not None else by
        words = f"{IncidentStatus(status).label} by {who}" + (f": {note}" if note else ".")
        timeline_add(
            locked,
            TimelineEntry.Kind.STATUS,
            words,
            actor=actor,
            public=status in PUBLIC_STEPS,
            status=status,
            note=note,
        )
        if status in PAGE_ACTIONS and not paged:
            page(locked, PAGE_ACTIONS[status])
        if status == IncidentStatus.RESOLVED:
            notification_send(
                channel="slack", recipient=INCIDENT_CHANNEL, subject=f"{locked.number} resolved", body=words
            )
            _postmortem_required(locked)
        return locked


def _postmortem_required(incident: Incident) -> PostMortem | None:
    """A resolved P0 or P1, or an incident that needed a rollback, owes a post-mortem within 48
    hours: made now with its timeline filled in from the incident's (in the caller's transaction)."""
    from incidents.defaults import POSTMORTEM_DUE, POSTMORTEM_SEVERITIES

    rolled_back = (
        incident.source == Incident.Source.DEPLOYMENT  # it rolled back by itself
        or incident.timeline.filter(kind=TimelineEntry.Kind.ROLLBACK, data__has_key="deployment").exists()
    )
    if incident.severity not in POSTMORTEM_SEVERITIES and not rolled_back:
        return None
    lines = [f"{e.at:%Y-%m-%d %H:%M} UTC  {e.text}" for e in incident.timeline.all()]
    postmortem, _ = PostMortem.objects.get_or_create(
        incident=incident,
        defaults={
            "due_at": incident.resolved_at + POSTMORTEM_DUE,
            "timeline": "\n".join(lines),
            "summary": incident.summary,
        },
    )
    due = f"{postmortem.due_at:%Y-%m-%d %H:%M} UTC"
    timeline_add(
        incident, TimelineEntry.Kind.LINK, f"A post-mortem is due by {due}.", postmortem=postmortem.pk
    )
    return postmortem


# The steps the status page tells customers of, in its own words (never the step's note, which is
# for the team; an acknowledgement finds no cause yet: customers still read "Investigating").
PUBLIC_STEPS = (IncidentStatus.MITIGATED, IncidentStatus.RESOLVED)
# What each step tells PagerDuty (mitigated is ours alone: the page stays open until resolved).
PAGE_ACTIONS = {IncidentStatus.ACKNOWLEDGED: "acknowledge", IncidentStatus.RESOLVED: "resolve"}


def incident_acknowledge(*, actor, incident: Incident, note: str = "", **outside) -> Incident:
    return _moved(actor, incident, IncidentStatus.ACKNOWLEDGED, stamp="acknowledged_at", note=note, **outside)


def incident_mitigate(*, actor, incident: Incident, note: str = "") -> Incident:
    return _moved(actor, incident, IncidentStatus.MITIGATED, stamp="mitigated_at", note=note)


def incident_resolve(*, actor, incident: Incident, note: str = "", **outside) -> Incident:
    return _moved(actor, incident, IncidentStatus.RESOLVED, stamp="resolved_at", note=note, **outside)


@transaction.atomic
def incident_publish(*, actor, incident: Incident, public: bool) -> Incident:
    """Puts the incident on the public status page (with its public updates, and one that says it is
    being looked into while it is open) or takes it off again (whoever runs incidents)."""
    from incidents import status

    if not has_right(actor, Right.INCIDENT_MANAGE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_MANAGE))
    locked = Incident.objects.select_for_update().get(pk=incident.pk)
    if locked.public == public:
        return locked
    locked.public = public
    locked.save(update_fields=["public"])
    audit_record(
        actor=actor,
        action="incident.publish",
        target=locked,
        before={"public": not public},
        after={"public": public},
    )
    words = "Put on the public status page" if public else "Taken off the public status page"
    timeline_add(locked, TimelineEntry.Kind.NOTE, f"{words} by {actor.display_name}.", actor=actor)
    if public and locked.status != IncidentStatus.RESOLVED:
        timeline_add(
            locked, TimelineEntry.Kind.DECLARED, f"Published: {locked.title}.", actor=actor, public=True
        )
    transaction.on_commit(status.status_page_forget)
    return locked


@transaction.atomic
def incident_join(*, actor, incident: Incident) -> Incident:
    """The person joins the response (anyone who may declare incidents); joining twice is a no-op."""
    if not has_right(actor, Right.INCIDENT_DECLARE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_DECLARE))
    locked = Incident.objects.select_for_update().get(pk=incident.pk)
    if locked.status == IncidentStatus.RESOLVED:
        raise IncidentRefused(f"{locked.number} is resolved: there is no response to join.")
    if locked.responders.filter(pk=actor.pk).exists():
        return locked
    locked.responders.add(actor)
    audit_record(actor=actor, action="incident.join", target=locked, after={"responder": actor.username})
    timeline_add(locked, TimelineEntry.Kind.NOTE, f"{actor.display_name} joined the response.", actor=actor)
    return locked


@transaction.atomic
def incident_take_command(*, actor, incident: Incident) -> Incident:
    """The person takes command (whoever runs incidents), from whoever had it; they respond too."""
    if not has_right(actor, Right.INCIDENT_MANAGE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_MANAGE))
    locked = Incident.objects.select_for_update(of=("self",)).select_related("commander").get(pk=incident.pk)
    if locked.status == IncidentStatus.RESOLVED:
        raise IncidentRefused(f"{locked.number} is resolved: there is nothing to command.")
    if locked.commander_id == actor.pk:
        return locked
    before = locked.commander.username if locked.commander else None
    words = f"{actor.display_name} took command" + (
        f" from {locked.commander.display_name}." if locked.commander else "."
    )
    locked.commander = actor
    locked.save(update_fields=["commander"])
    locked.responders.add(actor)
    audit_record(
        actor=actor,
        action="incident.command",
        target=locked,
        before={"commander": before},
        after={"commander": actor.username},
    )
    timeline_add(locked, TimelineEntry.Kind.NOTE, words, actor=actor)
    return locked


@transaction.atomic
def incident_note(*, actor, incident: Incident, text: str, public: bool = False) -> TimelineEntry:
    """A person's note on the timeline (anyone who may declare incidents may add one); a `public`
    one is an update on the status page too, which only whoever runs incidents posts, and only for
    a public incident."""
    if not has_right(actor, Right.INCIDENT_DECLARE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_DECLARE))
    if public and not has_right(actor, Right.INCIDENT_MANAGE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_MANAGE))
    if not text.strip():
        raise ValidationError("text: write the note.")
    if public and not incident.public:
        raise ValidationError(f"public: {incident.number} is not on the status page.")
    entry = timeline_add(incident, TimelineEntry.Kind.NOTE, text.strip(), actor=actor, public=public)
    audit_record(
        actor=actor, action="incident.note", target=incident, after={"text": entry.text, "public": public}
    )
    return entry


def incidents_escalate() -> list[str]:
    """Beat runs this every 30 s: each triggered incident past its response target (again, each
    target after) escalates once per target: the breach is recorded, the page sent again, and the
    next level of the escalation list told; the numbers of those escalated are returned."""
    from django.conf import settings

    now = clock.now()
    escalated = []
    for incident in Incident.objects.filter(status=IncidentStatus.TRIGGERED).order_by("pk"):
        due = incident.created_at + incident.response_target * (incident.escalation_level + 1)
        if due <= now:
            escalated.append(_escalate(incident.pk, now, settings.INCIDENT_ESCALATION))
    return [number for number in escalated if number]


@transaction.atomic
def _escalate(pk: int, now, levels: list[str]) -> str:
    incident = Incident.objects.select_for_update().get(pk=pk)
    due = incident.created_at + incident.response_target * (incident.escalation_level + 1)
    if incident.status != IncidentStatus.TRIGGERED or due > now:  # acknowledged, or done meanwhile
        return ""
    incident.escalation_level += 1
    incident.response_breached_at = (
        incident.response_breached_at or incident.created_at + incident.response_target
    )
    incident.save(update_fields=["escalation_level", "response_breached_at"])
    target = int(incident.response_target.total_seconds() // 60)
    told = levels[min(incident.escalation_level, len(levels)) - 1] if levels else ""
    words = (
        f"Not acknowledged within {target} min ({incident.severity}): escalated to level "
        f"{incident.escalation_level + 1}" + (f", {told} told." if told else ".")
    )
    audit_record(
        actor=None,
        action="incident.escalate",
        target=incident,
        after={
            "level": incident.escalation_level,
            "told": told,
            "breached_at": incident.response_breached_at,
        },
    )
    timeline_add(incident, TimelineEntry.Kind.ESCALATION, words, level=incident.escalation_level, told=told)
    page(incident, "trigger")
    if told:
        channel = "slack" if told.startswith("#") else "email"
        subject = f"{incident.number} {incident.severity} not acknowledged"
        notification_send(channel=channel, recipient=told, subject=subject, body=f"{incident.title}. {words}")
    return incident.number


def incident_for_rollback(deployment) -> Incident:
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


def incident_rollback(*, actor, incident: Incident, reason: str, revert: bool = False):
    """Rolls back the deployment the incident follows (release managers; SREs while the incident is
    open), with the deployments' own guards; on the timeline and audited with the rollback, in one
    transaction with the incident locked."""
    from deployments.services import DeployRefused, deployment_rollback

    try:
        with transaction.atomic():
            locked = Incident.objects.select_for_update().get(pk=incident.pk)
            if locked.deployment_id is None:
                raise IncidentRefused(
                    f"{locked.number} follows no deployment: there is nothing to roll back."
                )
            if locked.status == IncidentStatus.RESOLVED:
                raise IncidentRefused(f"{locked.number} is resolved: roll back from the deployment's page.")
            deployment = deployment_rollback(
                actor=actor, deployment=locked.deployment, reason=f"{locked.number}: {reason}", revert=revert
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


def may_revert(user) -> bool:
    """Whoever may roll deployments back may revert their code: release managers, SREs."""
    return has_right(user, Right.DEPLOYMENT_ROLLBACK) or has_right(user, Right.DEPLOYMENT_ROLLBACK_INCIDENT)


@transaction.atomic
def incident_revert(*, actor, incident: Incident) -> None:
    """Asks for the code revert of the release the incident follows (a revert commit on a repository
    on disk, a pull request on GitHub), made by a task: the timeline says when it is asked and what
    came of it. Asking again before that is refused."""
    from changes.models import Release

    if not may_revert(actor):
        raise PermissionDenied(missing_right_message(Right.DEPLOYMENT_ROLLBACK))
    locked = Incident.objects.select_for_update().get(pk=incident.pk)
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


def _revert_task():
    from incidents.tasks import incident_revert_run

    return incident_revert_run


def incident_revert_run(incident_id: int, actor_id: int) -> str:
    """The revert an incident asked for, in the repository; its outcome on the timeline. Returns
    what happened, in words."""
    from django.contrib.auth import get_user_model

    from changes import releases
    from integrations import scm

    incident = Incident.objects.select_related("change").get(pk=incident_id)
    actor = get_user_model().objects.get(pk=actor_id)
    try:
        reverted = releases.release_revert(actor=actor, change=incident.change, scm=scm.repository())
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
        version = incident.change.release.version if hasattr(incident.change, "release") else ""
        timeline_add(incident, TimelineEntry.Kind.ROLLBACK, words, version=version, outcome=True)
    return words


# Post-mortems: written by those who run and declare incidents, finished when the summary, the
# impact and the root cause are written; action items have an owner and a due date, and both are
# said to be overdue, once a day, until done.

POSTMORTEM_FIELDS = ("summary", "impact", "timeline", "root_cause", "went_well", "went_badly")
REMIND_EVERY = timedelta(hours=24)


def _may_write(actor) -> None:
    if not has_right(actor, Right.INCIDENT_DECLARE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_DECLARE))


@transaction.atomic
def postmortem_write(*, actor, postmortem: PostMortem, **fields) -> PostMortem:
    """Saves what is written; the first to write it is its author. A completed one keeps its
    summary, impact and root cause written."""
    _may_write(actor)
    unknown = sorted(set(fields) - set(POSTMORTEM_FIELDS))
    if unknown:
        raise ValidationError(f"{', '.join(unknown)}: a post-mortem has no such part.")
    locked = PostMortem.objects.select_for_update().get(pk=postmortem.pk)
    changed = {
        name: value.strip() for name, value in fields.items() if value.strip() != getattr(locked, name)
    }
    blanked = [name.replace("_", " ") for name in PostMortem.REQUIRED if changed.get(name) == ""]
    if locked.completed_at is not None and blanked:
        raise ValidationError(f"The post-mortem is completed: its {', '.join(blanked)} stays written.")
    if not changed:
        return locked
    before = {name: getattr(locked, name) for name in changed}
    for name, value in changed.items():
        setattr(locked, name, value)
    after = dict(changed)
    if locked.author_id is None:
        locked.author, after["author"] = actor, actor.username
    locked.save(update_fields=[*changed, "author"])
    audit_record(actor=actor, action="postmortem.write", target=locked.incident, before=before, after=after)
    return locked


@transaction.atomic
def postmortem_save(*, actor, postmortem: PostMortem, complete: bool = False, **fields) -> PostMortem:
    """Writes the parts and, with `complete`, finishes it: all or nothing."""
    saved = postmortem_write(actor=actor, postmortem=postmortem, **fields)
    return postmortem_complete(actor=actor, postmortem=saved) if complete else saved


@transaction.atomic
def postmortem_complete(*, actor, postmortem: PostMortem) -> PostMortem:
    """Marks it finished, once its summary, impact and root cause are written; told on #incidents."""
    _may_write(actor)
    locked = PostMortem.objects.select_for_update().select_related("incident").get(pk=postmortem.pk)
    if locked.completed_at is not None:
        raise IncidentRefused(f"The post-mortem of {locked.incident.number} is completed already.")
    missing = [name.replace("_", " ") for name in PostMortem.REQUIRED if not getattr(locked, name).strip()]
    if missing:
        raise ValidationError(f"Write the {', '.join(missing)} before completing the post-mortem.")
    locked.completed_at = clock.now()
    locked.author = locked.author or actor
    locked.save(update_fields=["completed_at", "author"])
    audit_record(actor=actor, action="postmortem.complete", target=locked.incident, after={"completed": True})
    timeline_add(locked.incident, TimelineEntry.Kind.LINK, f"Post-mortem completed by {actor.display_name}.")
    notification_send(
        channel="slack",
        recipient=INCIDENT_CHANNEL,
        subject=f"Post-mortem of {locked.incident.number} completed",
        body=locked.summary,
    )
    return locked


@transaction.atomic
def action_item_add(*, actor, postmortem: PostMortem, title: str, owner, due_on) -> ActionItem:
    """An action item for its owner, told by e-mail."""
    _may_write(actor)
    if not title.strip():
        raise ValidationError("title: say what is to be done.")
    if not owner.is_active:
        raise ValidationError(f"owner: {owner.display_name} can no longer sign in; name someone who can.")
    if due_on < clock.now().date():
        raise ValidationError("due_on: the due date is in the past.")
    item = ActionItem.objects.create(
        postmortem=postmortem, title=title.strip()[:300], owner=owner, due_on=due_on, created_at=clock.now()
    )
    audit_record(
        actor=actor,
        action="postmortem.action_item_add",
        target=postmortem.incident,
        after={"item": item.pk, "title": item.title, "owner": owner.username, "due_on": due_on.isoformat()},
    )
    if owner.email:
        notification_send(
            channel="email",
            recipient=owner.email,
            subject=f"Action item from the post-mortem of {postmortem.incident.number}",
            body=f"{item.title}\nDue on {due_on:%Y-%m-%d}.",
        )
    return item


@transaction.atomic
def action_item_set_state(*, actor, item: ActionItem, state: str) -> ActionItem:
    """Its owner, or whoever runs incidents, marks it done or dropped (or open again)."""
    if actor.pk != item.owner_id and not has_right(actor, Right.INCIDENT_MANAGE):
        raise PermissionDenied(f"Only {item.owner.display_name}, its owner, or an SRE may change this item.")
    if state not in ActionItem.State.values:
        raise ValidationError(f"state: one of {', '.join(ActionItem.State.values)}.")
    locked = ActionItem.objects.select_for_update().select_related("postmortem__incident").get(pk=item.pk)
    if locked.state == state:
        return locked
    before = locked.state
    locked.state = state
    locked.closed_at = None if state == ActionItem.State.OPEN else clock.now()
    locked.save(update_fields=["state", "closed_at"])
    audit_record(
        actor=actor,
        action="postmortem.action_item_state",
        target=locked.postmortem.incident,
        before={"item": locked.pk, "state": before},
        after={"item": locked.pk, "state": state},
    )
    return locked


def postmortems_remind() -> int:
    """Beat runs this hourly: an overdue post-mortem is told to its author (else the commander, else
    who declared it) and #incidents, an overdue action item to its owner, each once a day until done.
    Returns how many reminders went out."""
    now = clock.now()
    quiet = Q(reminded_at__isnull=True) | Q(reminded_at__lte=now - REMIND_EVERY)
    late = PostMortem.objects.filter(quiet, completed_at__isnull=True, due_at__lt=now).values_list(
        "pk", flat=True
    )
    items = ActionItem.objects.filter(quiet, state=ActionItem.State.OPEN, due_on__lt=now.date())
    return sum(_remind_postmortem(pk, now) for pk in late) + sum(
        _remind_item(pk, now) for pk in items.values_list("pk", flat=True)
    )


@transaction.atomic
def _remind_postmortem(pk: int, now) -> int:
    postmortem = (
        PostMortem.objects.select_for_update(of=("self",))
        .select_related("incident__commander", "incident__declared_by", "author")
        .get(pk=pk)
    )
    if postmortem.completed_at is not None or (
        postmortem.reminded_at and postmortem.reminded_at > now - REMIND_EVERY
    ):
        return 0
    incident = postmortem.incident
    postmortem.reminded_at = now
    postmortem.save(update_fields=["reminded_at"])
    subject = f"The post-mortem of {incident.number} is overdue"
    body = f"{incident.title}: it was due by {postmortem.due_at:%Y-%m-%d %H:%M} UTC."
    who = postmortem.author or incident.commander or incident.declared_by
    if who is not None and who.email:
        notification_send(channel="email", recipient=who.email, subject=subject, body=body)
    notification_send(channel="slack", recipient=INCIDENT_CHANNEL, subject=subject, body=body)
    audit_record(actor=None, action="postmortem.remind", target=incident, after={"due_at": postmortem.due_at})
    return 1


@transaction.atomic
def _remind_item(pk: int, now) -> int:
    item = (
        ActionItem.objects.select_for_update(of=("self",))
        .select_related("owner", "postmortem__incident")
        .get(pk=pk)
    )
    if item.state != ActionItem.State.OPEN or (item.reminded_at and item.reminded_at > now - REMIND_EVERY):
        return 0
    item.reminded_at = now
    item.save(update_fields=["reminded_at"])
    incident = item.postmortem.incident
    if item.owner.email:
        notification_send(
            channel="email",
            recipient=item.owner.email,
            subject=f"Overdue action item from the post-mortem of {incident.number}",
            body=f"{item.title}\nIt was due on {item.due_on:%Y-%m-%d}.",
        )
    audit_record(
        actor=None,
        action="postmortem.action_item_remind",
        target=incident,
        after={"item": item.pk, "owner": item.owner.username},
    )
    return 1
