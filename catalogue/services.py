"""Writes to the catalogue: environments and services, each checked and audited in one transaction."""

from django.db import transaction

from catalogue.models import Environment, Service
from portal.models import User
from portal.services import audit_record


def snapshot(instance) -> dict:
    """A row's fields as the audit trail keeps them (before/after)."""
    return {field.name: str(getattr(instance, field.attname)) for field in instance._meta.concrete_fields}


@transaction.atomic
def environment_create(*, actor: User | None, **fields) -> Environment:
    environment = Environment(**fields)
    environment.full_clean()
    environment.save()
    audit_record(actor=actor, action="environment.create", target=environment, after=snapshot(environment))
    return environment


@transaction.atomic
def service_create(*, actor: User | None, environments=(), **fields) -> Service:
    service = Service(**fields)
    service.full_clean()
    service.save()
    service.environments.set(environments)
    after = {**snapshot(service), "environments": [e.name for e in environments]}
    audit_record(actor=actor, action="service.create", target=service, after=after)
    return service
