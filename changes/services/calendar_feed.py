"""A person's calendar-feed addresses (changes/calendar_views.py): made anew on request, which
makes every older address stop working; audited."""

from django.db import transaction

from changes.models import CalendarFeed
from portal import clock
from portal.models import User
from portal.services import audit_record


def calendar_feed_generation(user: User) -> int:
    """The generation the person's addresses are made in now (0 before any renewal)."""
    feed = CalendarFeed.objects.filter(user=user).only("generation").first()
    return feed.generation if feed is not None else 0


@transaction.atomic
def calendar_feed_renew(*, actor: User) -> int:
    """Makes the person's calendar addresses anew: every address made before stops working.
    Returns the new generation."""
    feed, _ = CalendarFeed.objects.select_for_update().get_or_create(
        user=actor, defaults={"renewed_at": clock.now()}
    )
    before = feed.generation
    feed.generation += 1
    feed.renewed_at = clock.now()
    feed.save(update_fields=["generation", "renewed_at"])
    audit_record(
        actor=actor,
        action="calendar_feed.renew",
        target=actor,
        before={"generation": before},
        after={"generation": feed.generation},
    )
    return feed.generation
