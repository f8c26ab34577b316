"""What every request asks about its signed-in person besides the user row: the capacities they
hold and whether they have a confirmed authenticator. Kept in the cache instead of three queries
a request, and never stale after a grant, a revocation or a device change.

The entry's key carries a generation number that any write to a capacity or a device bumps, once
when the row is written and again when its transaction commits: a request that read the old rows
meanwhile can only fill an entry under a generation nobody reads any more. Entries also expire,
which bounds what a write made outside the ORM (a restore, raw SQL) can leave behind.

The bump hangs on the models' save and delete signals rather than on the services: a cache must
follow every write, the admin site's included. It decides nothing; the services still do.
"""

import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction

TTL_SECONDS = 300


@dataclass(frozen=True)
class Standing:
    capacities: frozenset[str]
    has_device: bool


def standing(user) -> Standing:
    """The person's standing, read once per request's user object."""
    known = getattr(user, "_greenlight_standing", None)
    if known is None:
        known = user._greenlight_standing = _cached(user)
    return known


def _cached(user) -> Standing:
    generation = cache.get(_generation_key(user.pk))
    if generation is None:
        generation = _new_generation(user.pk)
    key = f"access:{user.pk}:{generation}"
    found = cache.get(key)
    if found is None:
        found = _read(user)
        cache.set(key, found, TTL_SECONDS)
    return found


def forget(user_id: int) -> None:
    """Drops the person's entry now and again when the transaction writing it commits."""
    _bump(user_id)
    transaction.on_commit(lambda: _bump(user_id))


def _read(user) -> Standing:
    import django_otp

    from portal.models import UserCapacity

    capacities = frozenset(UserCapacity.objects.filter(user_id=user.pk).values_list("capacity", flat=True))
    return Standing(capacities=capacities, has_device=django_otp.user_has_device(user, confirmed=True))


def _generation_key(user_id: int) -> str:
    return f"access-generation:{user_id}"


def _new_generation(user_id: int) -> int:
    # Starts from the clock, so no generation is ever reused after the counter is lost.
    cache.add(_generation_key(user_id), time.time_ns(), timeout=None)
    return cache.get(_generation_key(user_id))


def _bump(user_id: int) -> None:
    try:
        cache.incr(_generation_key(user_id))
    except ValueError:  # no counter yet: a fresh one is a new generation too
        _new_generation(user_id)


def _on_write(sender, instance, **kwargs) -> None:
    forget(instance.user_id)


def connect_signals() -> None:
    from django.db.models.signals import post_delete, post_save
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from portal.models import UserCapacity

    for model in (UserCapacity, TOTPDevice, StaticDevice):
        post_save.connect(_on_write, sender=model, dispatch_uid=f"access-cache-{model.__name__}-save")
        post_delete.connect(_on_write, sender=model, dispatch_uid=f"access-cache-{model.__name__}-delete")
