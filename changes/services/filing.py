"""Filing a change, editing it, submitting it for review and cancelling it."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.db import models, transaction

from catalogue.models import Environment, Service
from changes import integrations
from changes.choices import ChangeType
from changes.models import ChangeRequest, StandardChangeTemplate
from changes.rules import ChangeError, cancel_refusal, edit_refusal, refuse, submit_refusal
from changes.services.base import (
    EDITABLE_FIELDS,
    S,
    _copy_checklist,
    _locked,
    _notify,
    _relations,
    _snapshot,
    _transition,
)
from changes.services.decisions import _dismiss
from integrations import scm
from portal import clock, hooks
from portal.models import User
from portal.services import audit_record

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _Edited(TypedDict):
        decisions_dismissed: int

    # A change as an edit leaves it, saying how many decisions the edit dismissed (the page tells).
    EditedChange = WithAnnotations[ChangeRequest, _Edited]


@dataclass
class ChangeInput:
    """What a person fills in; validated by the form or serializer before it gets here."""

    title: str
    description: str
    rollback_plan: str
    environment: Environment
    change_type: str = "normal"
    risk: str = "medium"
    risk_assessment: str = ""
    has_migrations: bool = False
    source_branch: str = "staging"
    pull_request: str = ""
    version_bump: str = "minor"
    stakeholder_channels: list[str] | None = None
    services: list[Service] | None = None
    stakeholders: list[User] | None = None
    # An incidents.Incident; changes sits below incidents in the layers, so it is typed as a model.
    incident: models.Model | None = None
    fixes_forward: ChangeRequest | None = None
    standard_template: StandardChangeTemplate | None = None


def _check_branch(change: ChangeRequest) -> None:
    """The source branch is a branch name git accepts, and not the branch it merges into (which
    is the environment's, never chosen)."""
    problem = scm.ref_name_problem(change.source_branch)
    if problem:
        raise ChangeError(f"source_branch: {problem}")
    if change.source_branch == change.environment.branch:
        raise ChangeError(
            f"source_branch: {change.environment} runs {change.environment.branch}, which the change "
            "merges into; name the branch that carries the change."
        )


def _check_template(
    template: StandardChangeTemplate | None, environment: Environment, services: list[Service]
) -> None:
    """A standard change goes only where its template was pre-approved for: the template's
    environment (one that names none is never used for production) and among its services, on
    filing and on every edit; otherwise the template's lighter rules would stand in for the full
    policy of another environment."""
    if template is None:
        return
    if template.environment_id is not None and environment.pk != template.environment_id:
        raise ChangeError(
            f"environment: “{template}” is pre-approved for {template.environment} only; a change to "
            f"{environment} is a normal change, under {environment}'s own approval policy."
        )
    if template.environment_id is None and environment.is_production:
        raise ChangeError(
            f"environment: “{template}” names no environment, so it is not pre-approved for "
            f"{environment}, a production environment; file a normal change."
        )
    allowed = {service.pk: service.name for service in template.services.all()}
    outside = sorted(service.name for service in services if service.pk not in allowed)
    if allowed and (outside or not services):
        raise ChangeError(
            f"services: “{template}” is pre-approved for {', '.join(sorted(allowed.values()))}"
            + (f", not {', '.join(outside)}." if outside else "; name which.")
        )


def _check_fix_forward(change: ChangeRequest) -> None:
    """A change fixes forward only a rolled-back (or failed) release whose code is still on its
    environment's branch."""
    from changes.selectors import ahead_of_live

    named = change.fixes_forward
    if named is None:
        return
    if named.pk == change.pk or named.pk not in {r.change_id for r in ahead_of_live(change.environment_id)}:
        raise ChangeError(
            f"fixes_forward: {named.number} left no code of its own on {change.environment}'s branch to fix "
            "forward (only a rolled-back or failed release that is not reverted does)."
        )


def _check_type(
    change_type: str, incident: models.Model | None, template: StandardChangeTemplate | None
) -> None:
    if change_type == ChangeType.EMERGENCY and incident is None:
        raise ChangeError("incident: an emergency change fixes an incident; link the incident it fixes.")
    if change_type == ChangeType.STANDARD and template is None:
        raise ChangeError("standard_template: a standard change is filed from a pre-approved template.")
    if template is not None and change_type != ChangeType.STANDARD:
        raise ChangeError("change_type: a change filed from a standard template is a standard change.")


@transaction.atomic
def change_create(*, actor: User, data: ChangeInput) -> ChangeRequest:
    """Files a draft with its own copy of the environment policy's checklist."""
    from catalogue.defaults import MIGRATION_CHECKLIST

    if not data.rollback_plan.strip():
        raise ChangeError("Write the rollback plan: how to go back if this goes wrong.")
    if data.standard_template is not None and not data.standard_template.active:
        raise ChangeError(f"standard_template: {data.standard_template} is retired; file a normal change.")
    _check_type(data.change_type, data.incident, data.standard_template)
    _check_branch(ChangeRequest(source_branch=data.source_branch, environment=data.environment))
    _check_fix_forward(ChangeRequest(environment=data.environment, fixes_forward=data.fixes_forward))
    _check_template(data.standard_template, data.environment, data.services or [])
    if data.change_type == ChangeType.EMERGENCY:
        hooks.emergency_grounds.send(incident=data.incident, requester=actor, environment=data.environment)
    now = clock.now()
    change = ChangeRequest.objects.create(
        requester=actor,
        created_at=now,
        updated_at=now,
        **{name: getattr(data, name) for name in EDITABLE_FIELDS if name != "stakeholder_channels"},
        stakeholder_channels=data.stakeholder_channels or [],
        standard_template=data.standard_template,
    )
    change.services.set(data.services or [])
    change.stakeholders.set(data.stakeholders or [])
    checklist = list(change.environment.approval_policy.checklist)
    _copy_checklist(change, checklist)
    if change.has_migrations:
        _copy_checklist(change, MIGRATION_CHECKLIST, start=len(checklist))
    audit_record(
        actor=actor, action="change.create", target=change, after={**_snapshot(change), **_relations(change)}
    )
    integrations.checklist_prove(
        change=change, integration="rollback_plan", evidence="Documented in the change."
    )
    if scm.configured():
        _read_repository_later(change)  # what its branch would ship, from its first day
    if change.fixes_forward_id is not None:
        hooks.change_fixes_forward.send(change=change, actor=actor)
    hooks.change_filed.send(change=change, actor=actor)
    return change


@transaction.atomic
def change_update(*, actor: User, change: ChangeRequest, data: dict[str, Any]) -> "EditedChange":
    """Edits a change. After submission every edit is a new revision: standing decisions are
    dismissed (as GitHub dismisses stale reviews), and an approved change goes back to submitted."""
    from catalogue.defaults import MIGRATION_CHECKLIST

    change = _locked(change)
    refuse(edit_refusal(actor, change))
    if "rollback_plan" in data and not str(data["rollback_plan"]).strip():
        raise ChangeError("Write the rollback plan: how to go back if this goes wrong.")
    before = {**_snapshot(change), **_relations(change)}
    for name, value in data.items():
        if name in EDITABLE_FIELDS:
            setattr(change, name, value)
    _check_type(change.change_type, change.incident, change.standard_template)
    _check_branch(change)
    if before["fixes_forward"] != _snapshot(change)["fixes_forward"]:
        _check_fix_forward(change)
        if change.fixes_forward_id is not None:
            hooks.change_fixes_forward.send(change=change, actor=actor)
    if "services" in data:
        change.services.set(data["services"])
    if "stakeholders" in data:
        change.stakeholders.set(data["stakeholders"])
    _check_template(change.standard_template, change.environment, list(change.services.all()))
    lane = ("change_type", "incident", "environment")
    if change.change_type == ChangeType.EMERGENCY and any(
        before[name] != _snapshot(change)[name] for name in lane
    ):
        hooks.emergency_grounds.send(
            incident=change.incident, requester=change.requester, environment=change.environment
        )
    if {**_snapshot(change), **_relations(change)} == before:
        # Saving an unchanged form is no edit: no new revision, nobody's decision dismissed.
        unchanged = cast("EditedChange", change)
        unchanged.decisions_dismissed = 0
        return unchanged
    if change.has_migrations and not change.checklist.filter(key=MIGRATION_CHECKLIST[0]["key"]).exists():
        _copy_checklist(change, MIGRATION_CHECKLIST, start=change.checklist.count())
    change.updated_at = clock.now()
    dismissed = 0
    if change.status != S.DRAFT:
        change.revision += 1
        dismissed = len(
            _dismiss(
                change.approvals.all(),
                reason=f"The change was edited (revision {change.revision}).",
                subject=f"{change.number} was edited: your decision was dismissed",
                body=f"{actor.display_name} edited {change.number} (revision {change.revision}); "
                "please look again and decide anew.",
            )
        )
    change.save()
    audit_record(
        actor=actor,
        action="change.update",
        target=change,
        before=before,
        after={**_snapshot(change), **_relations(change), "decisions_dismissed": dismissed},
    )
    if change.status in (S.APPROVED, S.SCHEDULED):
        _transition(change, S.SUBMITTED, actor=actor, note="edited after approval: approvals dismissed")
        integrations.checklist_prove(change=change, integration="approvals", evidence="", done=False)
    if change.status != S.DRAFT:
        _read_repository_later(change)
    edited = cast("EditedChange", change)
    edited.decisions_dismissed = dismissed
    return edited


@transaction.atomic
def change_submit(*, actor: User, change: ChangeRequest) -> ChangeRequest:
    """Sends a draft (or an answered request for changes) to the approvers; tells stakeholders."""
    change = _locked(change)
    refuse(submit_refusal(actor, change))
    _transition(change, S.SUBMITTED, actor=actor)
    _notify(
        change,
        f"{change.number} submitted for approval: {change.title}",
        f"{actor.display_name} submitted it.",
    )
    integrations.checklist_prove(
        change=change,
        integration="stakeholders",
        evidence=f"Notified on submission at {change.submitted_at:%Y-%m-%d %H:%M} UTC.",
    )
    _read_repository_later(change)
    return change


def _read_repository_later(change: ChangeRequest) -> None:
    """Once the transaction commits, a task reads the change's pull request for its gates."""
    from changes.tasks import pull_request_read

    def read(pk: int = change.pk) -> None:
        pull_request_read.delay(pk)

    transaction.on_commit(read)


@transaction.atomic
def change_cancel(*, actor: User, change: ChangeRequest, reason: str) -> ChangeRequest:
    change = _locked(change)
    refuse(cancel_refusal(actor, change))
    if not reason.strip():
        raise ChangeError("Say why the change is cancelled.")
    was_approved = change.status in (S.APPROVED, S.SCHEDULED)
    _transition(change, S.CANCELLED, actor=actor, note=reason.strip())
    if was_approved:
        integrations.checklist_prove(change=change, integration="approvals", evidence="", done=False)
    _notify(change, f"{change.number} cancelled", reason.strip())
    return change
