"""What every request asks about its signed-in person besides the user row: the capacities they
hold and whether they have a confirmed authenticator. Kept in the cache instead of three queries
a request, and never stale after a grant, a revocation or a device change.

The entry's key carries the person's generation (portal.generations), which any write to a
capacity or a device bumps.

The bump hangs on the models' save and delete signals rather than on the services: a cache must
follow every write, the admin site's included. It decides nothing; the services still do.
"""

from dataclasses import dataclass

from portal import generations

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
    return generations.remembered(
        f"access:{user.pk}", [generation_name(user.pk)], lambda: _read(user), TTL_SECONDS
    )


def forget(user_id: int) -> None:
    """Drops the person's entry now and again when the transaction writing it commits."""
    generations.bump(generation_name(user_id))


def generation_name(user_id: int) -> str:
    return f"access-generation:{user_id}"  # the key's name since the cache began: kept across releases


def _read(user) -> Standing:
    import django_otp

    from portal.models import UserCapacity

    capacities = frozenset(UserCapacity.objects.filter(user_id=user.pk).values_list("capacity", flat=True))
    return Standing(capacities=capacities, has_device=django_otp.user_has_device(user, confirmed=True))


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
