"""Post-mortems and their action items."""

from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from incidents.models import ActionItem, PostMortem, TimelineEntry
from incidents.services.base import INCIDENT_CHANNEL, IncidentRefused, timeline_add
from portal import clock
from portal.models import User
from portal.roles import Right, has_right, require_right
from portal.services import audit_record, notification_send

# Post-mortems: written by those who run and declare incidents, finished when the summary, the
# impact and the root cause are written; action items have an owner and a due date, and both are
# said to be overdue, once a day, until done.

POSTMORTEM_FIELDS = ("summary", "impact", "timeline", "root_cause", "went_well", "went_badly")
REMIND_EVERY = timedelta(hours=24)


@transaction.atomic
def postmortem_write(*, actor: User, postmortem: PostMortem, **fields: str) -> PostMortem:
    """Saves what is written; the first to write it is its author. A completed one keeps its
    summary, impact and root cause written."""
    require_right(actor, Right.INCIDENT_DECLARE)
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
def postmortem_save(
    *, actor: User, postmortem: PostMortem, complete: bool = False, **fields: str
) -> PostMortem:
    """Writes the parts and, with `complete`, finishes it: all or nothing."""
    saved = postmortem_write(actor=actor, postmortem=postmortem, **fields)
    return postmortem_complete(actor=actor, postmortem=saved) if complete else saved


@transaction.atomic
def postmortem_complete(*, actor: User, postmortem: PostMortem) -> PostMortem:
    """Marks it finished, once its summary, impact and root cause are written; told on #incidents."""
    require_right(actor, Right.INCIDENT_DECLARE)
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
def action_item_add(
    *, actor: User, postmortem: PostMortem, title: str, owner: User, due_on: date
) -> ActionItem:
    """An action item for its owner, told by e-mail."""
    require_right(actor, Right.INCIDENT_DECLARE)
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
def action_item_set_state(*, actor: User, item: ActionItem, state: str) -> ActionItem:
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
def _remind_postmortem(pk: int, now: datetime) -> int:
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
def _remind_item(pk: int, now: datetime) -> int:
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
