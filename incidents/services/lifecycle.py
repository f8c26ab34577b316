"""An incident's life: declared, acknowledged, mitigated, resolved (a step may be skipped, never
undone), published on the status page, joined, commanded, noted."""

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from incidents.models import Incident, IncidentStatus, PostMortem, Severity, TimelineEntry
from incidents.services.base import INCIDENT_CHANNEL, IncidentRefused, page, timeline_add
from portal import clock
from portal.models import User
from portal.roles import Right, has_right, missing_right_message, require_right
from portal.services import audit_record, notification_send

if TYPE_CHECKING:
    from catalogue.models import Service
    from changes.models import ChangeRequest
    from deployments.models import Deployment


@transaction.atomic
def incident_declare(
    *,
    actor: User | None,
    title: str,
    severity: str,
    summary: str = "",
    services: Sequence["Service"] = (),
    public: bool = False,
    public_title: str = "",
    source: str = Incident.Source.PERSON,
    deployment: "Deployment | None" = None,
    change: "ChangeRequest | None" = None,
    started_at: datetime | None = None,
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
    public_title = _public_title(public_title, required=public)
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
        public_title=public_title,
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
            "public_title": public_title,
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
    actor: User | None,
    incident: Incident,
    status: str,
    *,
    stamp: str,
    note: str = "",
    by: str = "",
    paged: bool = False,
) -> Incident:
    """Moves the incident on, if its status allows, stamping when; audited and on the timeline.
    `actor` is None when PagerDuty brought the step back (`by` says who there; `paged`: PagerDuty
    knows already, so the page is not told again)."""
    if actor is not None and not has_right(actor, Right.INCIDENT_MANAGE):
        raise PermissionDenied(missing_right_message(Right.INCIDENT_MANAGE))
    with transaction.atomic():
        locked = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
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
    assert incident.resolved_at is not None  # stamped by the move to resolved
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
PAGE_ACTIONS: dict[str, str] = {
    IncidentStatus.ACKNOWLEDGED: "acknowledge",
    IncidentStatus.RESOLVED: "resolve",
}


def incident_acknowledge(
    *, actor: User | None, incident: Incident, note: str = "", **outside: Any
) -> Incident:
    return _moved(actor, incident, IncidentStatus.ACKNOWLEDGED, stamp="acknowledged_at", note=note, **outside)


def incident_mitigate(*, actor: User, incident: Incident, note: str = "") -> Incident:
    return _moved(actor, incident, IncidentStatus.MITIGATED, stamp="mitigated_at", note=note)


def incident_resolve(*, actor: User | None, incident: Incident, note: str = "", **outside: Any) -> Incident:
    return _moved(actor, incident, IncidentStatus.RESOLVED, stamp="resolved_at", note=note, **outside)


def _public_title(value: str, *, required: bool) -> str:
    """The title the public status page shows, trimmed; a refusal in words when one is needed and
    missing."""
    title = " ".join((value or "").split())
    if required and not title:
        raise ValidationError(
            "public_title: give the title the status page shows, in words for customers "
            "(e.g. “Checkout is slow”): the incident's own title stays internal."
        )
    if len(title) > 200:
        raise ValidationError("public_title: at most 200 characters.")
    return title


@transaction.atomic
def incident_publish(*, actor: User, incident: Incident, public: bool, public_title: str = "") -> Incident:
    """Puts the incident on the public status page under its public title (given now, or kept from
    before; its own title, which may name changes and systems, stays internal), with its public
    updates and one that says it is being looked into while it is open; or takes it off again
    (whoever runs incidents)."""
    from incidents import status

    require_right(actor, Right.INCIDENT_MANAGE)
    locked = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    title = _public_title(public_title or (locked.public_title if public else ""), required=public)
    if locked.public == public and (not public or title == locked.public_title):
        return locked
    before = {"public": locked.public, "public_title": locked.public_title}
    if public:
        locked.public_title = title
    was_public, locked.public = locked.public, public
    locked.save(update_fields=["public", "public_title"])
    audit_record(
        actor=actor,
        action="incident.publish",
        target=locked,
        before=before,
        after={"public": public, "public_title": locked.public_title},
    )
    if was_public == public:  # a new public title only
        timeline_add(
            locked, TimelineEntry.Kind.NOTE, f"Public title: {title} ({actor.display_name}).", actor=actor
        )
        transaction.on_commit(status.status_page_forget)
        return locked
    words = "Put on the public status page" if public else "Taken off the public status page"
    timeline_add(locked, TimelineEntry.Kind.NOTE, f"{words} by {actor.display_name}.", actor=actor)
    if public and locked.status != IncidentStatus.RESOLVED:
        timeline_add(
            locked,
            TimelineEntry.Kind.DECLARED,
            f"Published: {locked.public_title}.",
            actor=actor,
            public=True,
        )
    transaction.on_commit(status.status_page_forget)
    return locked


@transaction.atomic
def incident_join(*, actor: User, incident: Incident) -> Incident:
    """The person joins the response (anyone who may declare incidents); joining twice is a no-op."""
    require_right(actor, Right.INCIDENT_DECLARE)
    locked = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    if locked.status == IncidentStatus.RESOLVED:
        raise IncidentRefused(f"{locked.number} is resolved: there is no response to join.")
    if locked.responders.filter(pk=actor.pk).exists():
        return locked
    locked.responders.add(actor)
    audit_record(actor=actor, action="incident.join", target=locked, after={"responder": actor.username})
    timeline_add(locked, TimelineEntry.Kind.NOTE, f"{actor.display_name} joined the response.", actor=actor)
    return locked


@transaction.atomic
def incident_take_command(*, actor: User, incident: Incident) -> Incident:
    """The person takes command (whoever runs incidents), from whoever had it; they respond too."""
    require_right(actor, Right.INCIDENT_MANAGE)
    locked = (
        Incident.objects.select_for_update(no_key=True, of=("self",))
        .select_related("commander")
        .get(pk=incident.pk)
    )
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
def incident_note(*, actor: User, incident: Incident, text: str, public: bool = False) -> TimelineEntry:
    """A person's note on the timeline (anyone who may declare incidents may add one); a `public`
    one is an update on the status page too, which only whoever runs incidents posts, and only for
    a public incident."""
    require_right(actor, Right.INCIDENT_DECLARE)
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
