"""Writes to the catalogue: environments and services, audited."""

from django.db import transaction

from deployments.models import Environment, Service
from portal.services import audit_record


def _snapshot(instance) -> dict:
    return {field.name: str(getattr(instance, field.attname)) for field in instance._meta.concrete_fields}


@transaction.atomic
def environment_create(*, actor, **fields) -> Environment:
    environment = Environment(**fields)
    environment.full_clean()
    environment.save()
    audit_record(actor=actor, action="environment.create", target=environment, after=_snapshot(environment))
    return environment


@transaction.atomic
def service_create(*, actor, environments=(), **fields) -> Service:
    service = Service(**fields)
    service.full_clean()
    service.save()
    service.environments.set(environments)
    after = {**_snapshot(service), "environments": [e.name for e in environments]}
    audit_record(actor=actor, action="service.create", target=service, after=after)
    return service
