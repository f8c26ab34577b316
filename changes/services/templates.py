"""Standard change templates: pre-approved changes, made and retired by policy administrators."""

from typing import Any

from django.db import transaction

from changes.models import StandardChangeTemplate
from changes.rules import ChangeError
from portal import clock
from portal.models import User
from portal.roles import Right, require_right
from portal.services import audit_record


@transaction.atomic
def standard_template_create(*, actor: User, data: dict[str, Any]) -> StandardChangeTemplate:
    """A pre-approved kind of change, kept by policy administrators (the caller checked a fresh OTP)."""
    require_right(actor, Right.POLICY_MANAGE)
    if not str(data.get("rollback_plan", "")).strip():
        raise ChangeError("rollback_plan: write how a change of this kind is undone.")
    services_ = data.pop("services", [])
    template = StandardChangeTemplate.objects.create(**data, created_by=actor, created_at=clock.now())
    template.services.set(services_)
    audit_record(
        actor=actor,
        action="standard_template.create",
        target=template,
        after={
            "name": template.name,
            "min_approvals": template.min_approvals,
            "min_code_owner_approvals": template.min_code_owner_approvals,
            "required_sign_offs": template.required_sign_offs,
            "environment": template.environment.name if template.environment else None,
        },
    )
    return template


@transaction.atomic
def standard_template_retire(*, actor: User, template: StandardChangeTemplate) -> StandardChangeTemplate:
    """No new change is filed from it; those filed keep it."""
    require_right(actor, Right.POLICY_MANAGE)
    template.active = False
    template.save(update_fields=["active"])
    audit_record(
        actor=actor,
        action="standard_template.retire",
        target=template,
        before={"active": True},
        after={"active": False},
    )
    return template
