"""The change as its page and its API show it, kept in the cache from one write to the next.

Reading a change with its checklist, decisions, stakeholders, services, comments and checks takes
seven queries, which the ORM spends longer composing than PostgreSQL running. The read is kept,
pickled, under two generations (portal.generations): the change's own, which any write to the
change or to a row of it bumps, and the catalogue's, which any write to what many changes show
bumps (people, environments and their policies, services, incidents, templates). Each view
unpickles its own copy, so what a view marks on the rows stays with it. Only rows are kept:
what turns with the clock (the gates, the next slot, the soak) is worked out on every view. The
page keeps its timeline and latest deployments beside the change the same way: an audit event
on the change and a write to one of its deployments bump its generation (a deployment's lease,
written with one UPDATE, is not shown).

The bumps hang on the models' signals, the admin site's writes included; a write that bypasses
them (`QuerySet.update`, `bulk_create`) calls `forget`. Only reads for showing use the snapshot:
an act reads the change from the database, and the services lock what they change.
"""

import hashlib
from collections.abc import Callable

from portal import generations

TTL_SECONDS = 300
CATALOGUE = "change-catalogue-generation"
# Raised when what a snapshot holds changes without a model's fields changing (a prefetch more or
# less, another attribute set on the change): entries of the last release are then not read.
VERSION = 1
# Written on their own, they change nothing a change shows.
UNSHOWN_FIELDS = {"last_login"}


def shown(pk: int, read: Callable[[], object], part: str = "change"):
    """The snapshot of change `pk` (a copy of its own, unpickled for this view), or `read()`'s
    result, kept for the next view; `part` names what is kept, when a page keeps more than the
    change."""
    return generations.remembered(
        f"change-snapshot:{VERSION}:{_shape()}:{part}:{pk}", [_name(pk), CATALOGUE], read, TTL_SECONDS
    )


def forget(change_id: int) -> None:
    generations.bump(_name(change_id))


def _name(change_id: int) -> str:
    return f"change-generation:{change_id}"


_shape_digest = ""


def _shape() -> str:
    """The models' fields: a release that adds or drops one reads its snapshots anew."""
    global _shape_digest
    if not _shape_digest:
        fields = [(m._meta.label, [f.attname for f in m._meta.concrete_fields]) for m in _kept_models()]
        _shape_digest = hashlib.blake2b(repr(fields).encode(), digest_size=8).hexdigest()
    return _shape_digest


# The rows a change page shows, each model with the field naming its change (changes' own, and
# those the apps above register with watch_own), and the models any page of changes shows
# (watch_catalogue): a write to one forgets one change's snapshots, or every change's.
_OWN: dict[type, str] = {}
_CATALOGUE: list[type] = []


def watch_own(model: type, *, change_field: str) -> None:
    from django.db.models.signals import post_delete, post_save

    _OWN[model] = change_field
    for what, signal in (("save", post_save), ("delete", post_delete)):
        signal.connect(_own_written, sender=model, dispatch_uid=f"snapshot-{model.__name__}-{what}")


def watch_catalogue(model: type) -> None:
    from django.db.models.signals import post_delete, post_save

    _CATALOGUE.append(model)
    for what, signal in (("save", post_save), ("delete", post_delete)):
        signal.connect(_catalogue_written, sender=model, dispatch_uid=f"snapshot-{model.__name__}-{what}")


def _kept_models() -> list:
    from portal.models import AuditEvent

    return [*_OWN, *_CATALOGUE, AuditEvent]


def _own_written(sender, instance, **kwargs) -> None:
    forget(getattr(instance, _OWN[sender]))


def _audited(sender, instance, **kwargs) -> None:
    """An event on a change's timeline."""
    if instance.object_type == "changes.changerequest" and instance.object_id.isdigit():
        forget(int(instance.object_id))


def _catalogue_written(sender, update_fields=None, **kwargs) -> None:
    if update_fields and set(update_fields) <= UNSHOWN_FIELDS:  # a sign-in's last_login
        return
    generations.bump(CATALOGUE)


def _migrated(**kwargs) -> None:
    """A data migration writes through historical models, which send no signal of ours."""
    generations.bump(CATALOGUE)


def _links_changed(sender, instance, action, pk_set, **kwargs) -> None:
    """A change's stakeholders or services: from the change's side one change, from the person's
    or the service's side (`user.watched_changes.add`) the changes in `pk_set`, or all of them."""
    from changes.models import ChangeRequest

    if not action.startswith("post_"):
        return
    if isinstance(instance, ChangeRequest):
        forget(instance.pk)
    elif pk_set:
        for pk in pk_set:
            forget(pk)
    else:
        generations.bump(CATALOGUE)


def connect_signals() -> None:
    from django.db.models.signals import m2m_changed, post_migrate, post_save

    from catalogue.models import ApprovalPolicy, Environment, Service
    from changes.models import (
        Approval,
        ChangeRequest,
        ChecklistItem,
        CheckRun,
        Comment,
        PullRequest,
        Release,
        StandardChangeTemplate,
    )
    from portal.models import AuditEvent, User

    watch_own(ChangeRequest, change_field="pk")
    for model in (ChecklistItem, Approval, Comment, CheckRun, PullRequest, Release):
        watch_own(model, change_field="change_id")
    for model in (User, Environment, ApprovalPolicy, Service, StandardChangeTemplate):
        watch_catalogue(model)
    post_save.connect(_audited, sender=AuditEvent, dispatch_uid="snapshot-AuditEvent-save")
    post_migrate.connect(_migrated, dispatch_uid="snapshot-migrated")
    for through in (ChangeRequest.stakeholders.through, ChangeRequest.services.through):
        m2m_changed.connect(_links_changed, sender=through, dispatch_uid=f"snapshot-{through.__name__}")
