"""Comments on a change, and the people they mention."""

import re

from django.db import transaction

from changes.models import ChangeRequest, Comment
from changes.rules import ChangeError
from portal import clock
from portal.models import User
from portal.services import audit_record, notification_send

MENTION = re.compile(r"(?<![\w.])@([\w.@+-]{1,150})")


@transaction.atomic
def comment_add(*, actor: User, change: ChangeRequest, body: str, parent: Comment | None = None) -> Comment:
    """A comment, or a reply under one; people @mentioned are told."""
    body = body.strip()
    if not body:
        raise ChangeError("Write something to comment.")
    if parent is not None and parent.change_id != change.pk:
        raise ChangeError("Reply to a comment on the same change.")
    if parent is not None and parent.parent_id is not None:
        parent = parent.parent  # one level of threading, as in a review thread
    comment = Comment.objects.create(
        change=change, author=actor, parent=parent, body=body, created_at=clock.now()
    )
    # "@bo." at the end of a sentence mentions bo.
    names = {name.rstrip(".") for name in MENTION.findall(body)}
    mentioned = list(User.objects.filter(username__in=names, is_active=True).exclude(pk=actor.pk))
    audit_record(
        actor=actor,
        action="change.comment",
        target=change,
        after={
            "comment": comment.pk,
            "parent": parent.pk if parent else None,
            "mentions": [u.username for u in mentioned],
        },
    )
    for user in mentioned:
        if user.email:
            notification_send(
                channel="email",
                recipient=user.email,
                subject=f"{actor.display_name} mentioned you on {change.number}",
                body=body,
            )
    return comment
