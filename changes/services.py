"""Every write to a change request: guarded, locked, audited, in one transaction.

Errors a person can act on are `ChangeError` (a 400 or 409 with the message); the views never
change a row themselves.
"""

import re
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from catalogue.models import Environment, Service
from changes import integrations, snapshots
from changes.choices import (
    APPROVED_ONWARDS,
    CLOSED,
    EDITABLE,
    SUBMITTABLE,
    ChangeStatus,
    ChangeType,
    Decision,
)
from changes.models import Approval, ChangeRequest, ChecklistItem, Comment
from changes.quorum import quorum_summary, reviewed_commit
from changes.selectors import NEW_COMMITS, code_owner_logins, pending_approvers
from integrations import scm
from portal import clock, hooks
from portal.models import User
from portal.roles import Right, has_right, missing_right_message
from portal.services import audit_record, notification_send

S = ChangeStatus
EDITABLE_FIELDS = (
    "title",
    "description",
    "rollback_plan",
    "change_type",
    "risk",
    "risk_assessment",
    "environment",
    "has_migrations",
    "source_branch",
    "pull_request",
    "version_bump",
    "stakeholder_channels",
    "incident",
    "fixes_forward",
)


class ChangeError(ValidationError):
    """A rule refused the act; `conflict` marks a clash with the change's current state (409)."""

    def __init__(self, message: str, *, conflict: bool = False):
        super().__init__(message)
        self.conflict = conflict


class SlotRefused(ChangeError):
    """A slot a change may not deploy in, with the next free one (or None); the API answer
    carries it as `next_slot`."""

    def __init__(self, message: str, *, next_slot):
        super().__init__(message, conflict=True)
        self.next_slot = next_slot

    @property
    def extra(self) -> dict:
        return {"next_slot": self.next_slot.as_dict() if self.next_slot else None}


def _snapshot(change: ChangeRequest) -> dict:
    data = {
        name: getattr(change, name)
        for name in EDITABLE_FIELDS
        if name not in {"environment", "incident", "fixes_forward"}
    }
    data["environment"] = change.environment.name
    data["target_branch"] = change.target_branch
    data["incident"] = change.incident.number if change.incident_id else None
    data["fixes_forward"] = change.fixes_forward.number if change.fixes_forward_id else None
    data["status"] = change.status
    data["revision"] = change.revision
    return data


def _relations(change: ChangeRequest) -> dict:
    return {
        "services": sorted(change.services.values_list("name", flat=True)),
        "stakeholders": sorted(change.stakeholders.values_list("username", flat=True)),
    }


def _locked(change: ChangeRequest) -> ChangeRequest:
    return (
        ChangeRequest.objects.select_for_update()
        .select_related("environment__approval_policy")
        .get(pk=change.pk)
    )


def _transition(
    change: ChangeRequest, status: str, *, actor, note: str = "", after: dict | None = None
) -> None:
    if not change.can_transition_to(status):
        raise ChangeError(change.transition_error(status), conflict=True)
    before = change.status
    change.status = status
    now = clock.now()
    change.updated_at = now
    fields = ["status", "updated_at"]
    if before == S.SCHEDULED and status in (S.APPROVED, S.SUBMITTED):
        # Back to waiting: the slot is given up for others.
        change.scheduled_start = change.scheduled_end = None
        fields += ["scheduled_start", "scheduled_end"]
        integrations.checklist_prove(change=change, integration="schedule", evidence="", done=False)
    if status == S.SUBMITTED:
        change.submitted_at = now
        change.approved_commit = ""  # approved again, on whatever commit then
        fields += ["submitted_at", "approved_commit"]
    if status == S.APPROVED:
        change.approved_at = now
        change.approved_commit = commit = reviewed_commit(change)
        fields += ["approved_at", "approved_commit"]
        after = {**(after or {}), **({"commit": commit} if commit else {})}
    change.save(update_fields=fields)
    audit_record(
        actor=actor,
        action=f"change.{status}",
        target=change,
        before={"status": before},
        after={"status": status, **({"note": note} if note else {}), **(after or {})},
    )


def change_move(*, change: ChangeRequest, status: str, actor=None, note: str = "") -> None:
    """Moves a change the deployment engine carries (deploying, verifying, rolled back, failed),
    audited in the caller's transaction."""
    _transition(_locked(change), status, actor=actor, note=note)
    change.refresh_from_db(fields=["status", "updated_at"])


def _copy_checklist(change: ChangeRequest, items: list[dict], start: int = 0) -> None:
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            change=change,
            position=start + i,
            key=item["key"],
            text=item["text"],
            phases=list(item["phases"]),
            integration=item.get("integration", ""),
            vouched_by=item.get("vouched_by", ""),
        )
        for i, item in enumerate(items)
    )
    snapshots.forget(change.pk)  # bulk_create sends no signal


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
    stakeholder_channels: list | None = None
    services: list[Service] | None = None
    stakeholders: list[User] | None = None
    incident: object = None
    fixes_forward: object = None
    standard_template: object = None


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


def _check_template(template, environment: Environment, services: list[Service]) -> None:
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


def _check_type(change_type: str, incident, template) -> None:
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
def change_update(*, actor: User, change: ChangeRequest, data: dict) -> ChangeRequest:
    """Edits a change. After submission every edit is a new revision: standing decisions are
    dismissed (as GitHub dismisses stale reviews), and an approved change goes back to submitted."""
    from catalogue.defaults import MIGRATION_CHECKLIST

    change = _locked(change)
    if actor.pk != change.requester_id:
        raise ChangeError("Only the requester edits a change; comment to suggest an edit.")
    if change.status not in EDITABLE:
        raise ChangeError(
            f"{change.number} is {change.get_status_display().lower()} and can no longer be edited.",
            conflict=True,
        )
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
        change.decisions_dismissed = 0
        return change
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
    change.decisions_dismissed = dismissed
    return change


def _dismiss(decisions, *, reason: str, subject: str, body: str) -> list[Approval]:
    """Dismisses the standing decisions among `decisions` and tells each person; the caller audits."""
    standing = list(decisions.filter(dismissed_at__isnull=True).select_related("approver"))
    Approval.objects.filter(pk__in=[a.pk for a in standing]).update(
        dismissed_at=clock.now(), dismissed_reason=reason[:200]
    )
    for change_id in {a.change_id for a in standing}:
        snapshots.forget(change_id)
    for approval in standing:
        if approval.approver.email:
            notification_send(channel="email", recipient=approval.approver.email, subject=subject, body=body)
    return standing


def change_head_moved(*, change: ChangeRequest, before: str, after: str, carried: bool = False) -> int:
    """The change's branch has a new head (`after`; `before` is the one last read, empty on the
    first read): approvals given on any other commit are dismissed, as GitHub dismisses stale
    approvals, the people told and the page saying why, and an approved change goes back to
    waiting for its quorum. With `carried` (the new commits only merge the target branch in, and
    the policy keeps approvals then) they move to the new head instead. Rejections and requests
    for changes stand. Runs in the caller's transaction, on the locked change; a change that has
    started to deploy keeps the commit it approved. Returns how many were dismissed."""
    if change.status not in (S.SUBMITTED, S.APPROVED, S.SCHEDULED, S.CHANGES_REQUESTED, S.REJECTED):
        return 0
    approvals = change.approvals.filter(decision=Decision.APPROVE, dismissed_at__isnull=True)
    if carried and before:
        count = approvals.filter(commit=before).update(commit=after)
        snapshots.forget(change.pk)
        if change.approved_commit == before:
            change.approved_commit = after
            change.save(update_fields=["approved_commit"])
        audit_record(
            actor=None,
            action="change.approvals_carried",
            target=change,
            before={"head": before},
            after={"head": after, "approvals": count, "why": "the new commits only merge the target in"},
        )
    branch = change.source_branch
    moved = f"{branch} moved from {before[:10]} to {after[:10]}" if before else f"{branch} is at {after[:10]}"
    stale = approvals.exclude(commit=after)
    if not stale.exists() and change.approved_commit in ("", after):
        return 0
    dismissed = _dismiss(
        stale,
        reason=f"{NEW_COMMITS}: {moved}.",
        subject=f"New commits on {change.number}: your approval was dismissed",
        body=f"{moved} since you approved {change.number} ({change.title}). Your approval was given on "
        "other code: look at the new commits and decide again.",
    )
    audit_record(
        actor=None,
        action="change.approvals_dismissed",
        target=change,
        before={"head": before or None, "approved_commit": change.approved_commit or None},
        after={"head": after, "dismissed": [a.approver.username for a in dismissed], "why": "new commits"},
    )
    if change.status in (S.APPROVED, S.SCHEDULED):
        _transition(change, S.SUBMITTED, actor=None, note=f"new commits since the approval ({moved})")
        integrations.checklist_prove(change=change, integration="approvals", evidence="", done=False)
    _notify(
        change,
        f"New commits on {change.number}: {len(dismissed)} approval(s) dismissed",
        f"{moved}. Approvals are given on a commit, so the approvers decide again on the new one.",
        stakeholders=False,
    )
    return len(dismissed)


@transaction.atomic
def change_submit(*, actor: User, change: ChangeRequest) -> ChangeRequest:
    """Sends a draft (or an answered request for changes) to the approvers; tells stakeholders."""
    change = _locked(change)
    if actor.pk != change.requester_id:
        raise ChangeError("Only the requester submits a change.")
    if change.status not in SUBMITTABLE:
        state = change.get_status_display().lower()
        raise ChangeError(
            f"{change.number} is {state}: only a draft or a sent-back change is submitted.", conflict=True
        )
    if (
        change.status in (S.CHANGES_REQUESTED, S.REJECTED)
        and change.approvals.filter(
            dismissed_at__isnull=True, decision__in=[Decision.REJECT, Decision.REQUEST_CHANGES]
        ).exists()
    ):
        raise ChangeError(
            "Edit the change to answer the request for changes before submitting it again.", conflict=True
        )
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

    transaction.on_commit(lambda pk=change.pk: pull_request_read.delay(pk))


@transaction.atomic
def change_decide(
    *,
    actor: User,
    change: ChangeRequest,
    decision: str,
    capacity: str = "",
    comment: str = "",
    second_factor: str = "",
) -> Approval:
    """Records an approval, a rejection or a request for changes (the caller checked a fresh OTP,
    `second_factor` says which), on the commit under review: the head of the change's pull request
    as last read, so that new commits dismiss it.

    Nobody decides on their own change; one standing decision per person (a second identical one
    is refused, a different one replaces it); the change becomes approved the moment the quorum holds.
    """
    change = _locked(change)
    if decision not in Decision.values:
        raise ChangeError(f"{decision!r} is not a decision; use approve, reject or request_changes.")
    if actor.pk == change.requester_id:
        raise ChangeError("Nobody approves their own change.")
    if not has_right(actor, Right.CHANGE_APPROVE):
        raise ChangeError(missing_right_message(Right.CHANGE_APPROVE))
    # An emergency change past approval still takes the decisions of its owed full review.
    reviewing = change.review_pending and change.status not in (S.SUBMITTED, S.APPROVED)
    if change.status not in (S.SUBMITTED, S.APPROVED) and not reviewing:
        state = change.get_status_display().lower()
        raise ChangeError(
            f"{change.number} is {state}: decisions are taken while it is submitted or approved.",
            conflict=True,
        )
    if capacity and capacity not in actor.capacity_names():
        raise ChangeError(f"You do not hold the {capacity} capacity, so you cannot sign off as it.")
    if capacity and decision != Decision.APPROVE:
        raise ChangeError("A sign-off is an approval; reject or request changes without a capacity.")
    commit = reviewed_commit(change)
    if not commit and scm.configured():
        from changes.selectors import pull_request_of

        pull = pull_request_of(change)
        why = f" (the last read failed: {pull.error})" if pull is not None and pull.error else ""
        raise ChangeError(
            f"{change.number}'s branch has not been read from the repository yet{why}. A decision is "
            "given on a commit, so it waits for the read, a few seconds after submission.",
            conflict=True,
        )
    standing = change.approvals.filter(approver=actor, dismissed_at__isnull=True).first()
    replaces = standing.decision if standing is not None else None
    now = clock.now()
    if standing is not None:
        if standing.decision == decision and standing.capacity == capacity:
            done = {Decision.APPROVE: "approved", Decision.REJECT: "rejected"}.get(
                decision, "requested changes on"
            )
            raise ChangeError(f"You already {done} {change.number}; one person counts once.", conflict=True)
        standing.dismissed_at = now
        standing.dismissed_reason = "Replaced by a later decision of the same person."
        standing.save(update_fields=["dismissed_at", "dismissed_reason"])
    try:
        with transaction.atomic():
            approval = Approval.objects.create(
                change=change,
                approver=actor,
                decision=decision,
                capacity=capacity,
                code_owner=(actor.github_login or "").lower() in code_owner_logins(change),
                comment=comment,
                revision=change.revision,
                commit=commit,
                second_factor=second_factor[:120],
                created_at=now,
            )
    except IntegrityError:
        raise ChangeError("Your decision on this change was already recorded.", conflict=True) from None
    audit_record(
        actor=actor,
        action=f"change.decision.{decision}",
        target=change,
        after={
            "decision": decision,
            "capacity": capacity,
            "code_owner": approval.code_owner,
            "revision": change.revision,
            "commit": commit or None,
            "second_factor": second_factor,
            "comment": comment,
            **({"replaces": replaces} if replaces else {}),
        },
    )
    was_approved = change.status == S.APPROVED
    if reviewing:
        _review_check(change)
        return approval
    if decision == Decision.REJECT:
        _transition(change, S.REJECTED, actor=actor)
        _notify(change, f"{change.number} rejected by {actor.display_name}", comment or "No comment.")
    elif decision == Decision.REQUEST_CHANGES:
        _transition(change, S.CHANGES_REQUESTED, actor=actor)
        _notify(
            change, f"{actor.display_name} requested changes on {change.number}", comment or "No comment."
        )
    elif was_approved:
        # A replaced decision can take the quorum away (a sign-off swapped for a plain approval).
        summary = quorum_summary(
            change, list(change.approvals.select_related("approver")), change.environment.approval_policy
        )
        if not summary.satisfied:
            _transition(change, S.SUBMITTED, actor=None, note=f"approval quorum lost: {summary.explain()}")
    if was_approved and change.status != S.APPROVED:
        integrations.checklist_prove(change=change, integration="approvals", evidence="", done=False)
    if change.status == S.SUBMITTED and decision == Decision.APPROVE and not was_approved:
        summary = quorum_summary(
            change, list(change.approvals.select_related("approver")), change.environment.approval_policy
        )
        if summary.satisfied:
            _transition(change, S.APPROVED, actor=None, note="approval quorum reached")
            integrations.checklist_prove(change=change, integration="approvals", evidence=summary.explain())
            _notify(change, f"{change.number} approved: {change.title}", summary.explain())
            if change.change_type == ChangeType.EMERGENCY:
                _review_owed(change)
        else:
            _notify(
                change,
                f"{actor.display_name} approved {change.number}",
                summary.explain(),
                stakeholders=False,
            )
    if change.review_pending and decision == Decision.APPROVE:
        _review_check(change)
    return approval


def _review_owed(change: ChangeRequest) -> None:
    """An emergency change approved up front owes the policy's full review within its hours."""
    policy = change.environment.approval_policy
    change.review_due_at = change.approved_at + timedelta(hours=policy.emergency_review_hours)
    change.save(update_fields=["review_due_at"])
    audit_record(
        actor=None,
        action="change.emergency_review_owed",
        target=change,
        after={"review_due_at": change.review_due_at},
    )
    due = f"{change.review_due_at:%Y-%m-%d %H:%M} UTC"
    _notify(
        change,
        f"{change.number} approved as an emergency: full review due {due}",
        f"{change.title} fixes {change.incident}. The approvers of the full policy review it within "
        f"{policy.emergency_review_hours} hours.",
    )


def _review_check(change: ChangeRequest) -> None:
    """Marks the owed review done once the full policy's quorum holds."""
    summary = quorum_summary(
        change,
        list(change.approvals.select_related("approver")),
        change.environment.approval_policy,
        full=True,
    )
    if not summary.satisfied:
        return
    change.reviewed_at = clock.now()
    change.save(update_fields=["reviewed_at"])
    audit_record(
        actor=None,
        action="change.emergency_reviewed",
        target=change,
        after={
            "reviewed_at": change.reviewed_at,
            "quorum": summary.explain(),
            "overdue": change.reviewed_at > change.review_due_at,
        },
    )
    _notify(change, f"{change.number}: full review done", summary.explain())


@transaction.atomic
def change_cancel(*, actor: User, change: ChangeRequest, reason: str) -> ChangeRequest:
    change = _locked(change)
    if actor.pk != change.requester_id and not has_right(actor, Right.DEPLOYMENT_DEPLOY):
        raise ChangeError("Only the requester or a release manager cancels a change.")
    if not reason.strip():
        raise ChangeError("Say why the change is cancelled.")
    was_approved = change.status in (S.APPROVED, S.SCHEDULED)
    _transition(change, S.CANCELLED, actor=actor, note=reason.strip())
    if was_approved:
        integrations.checklist_prove(change=change, integration="approvals", evidence="", done=False)
    _notify(change, f"{change.number} cancelled", reason.strip())
    return change


@transaction.atomic
def checklist_item_set(*, actor: User, item: ChecklistItem, done: bool, evidence: str = "") -> ChecklistItem:
    """A person ticks (or unticks) an item that is theirs to vouch for, with evidence: the
    requester or an approver of the change, or the holder of the sign-off the item names.

    The change is locked first, so no decision is dismissed or replaced while the tick is checked.
    Unticking after approval takes back what the approvers relied on: the audit event says so and
    the requester and the approvers are told.
    """
    change = _locked(item.change)
    item = ChecklistItem.objects.select_for_update().get(pk=item.pk)
    if item.integration:
        label = integrations.LABELS.get(item.integration, item.integration)
        state = "ticks it" if integrations.is_connected(item.integration) else "is not connected yet"
        raise ChangeError(f"“{item.text}” is proven by {label}, which {state}; nobody ticks it by hand.")
    if not has_right(actor, Right.CHANGE_CREATE):
        raise ChangeError(missing_right_message(Right.CHANGE_CREATE))
    refusal = item.tick_refusal(actor, change)
    if refusal:
        raise ChangeError(refusal)
    if change.status in CLOSED:
        raise ChangeError(
            f"{change.number} is {change.get_status_display().lower()}; its checklist is closed.",
            conflict=True,
        )
    if not done and not item.done:
        return item  # nothing to take back: no event, nobody told
    before = {"item": item.key, "done": item.done, "evidence": item.evidence}
    now = clock.now()
    item.done = done
    item.done_by = actor if done else None
    item.done_at = now if done else None
    item.evidence = evidence.strip() if done else ""
    item.save(update_fields=["done", "done_by", "done_at", "evidence"])
    after = {"item": item.key, "done": done, "evidence": item.evidence}
    if not done:
        after["after_approval"] = change.status in APPROVED_ONWARDS
    audit_record(
        actor=actor,
        action="change.checklist_tick" if done else "change.checklist_untick",
        target=change,
        before=before,
        after=after,
    )
    if not done and after["after_approval"]:
        _untick_told(change, item, actor, now)
    return item


def _untick_told(change: ChangeRequest, item: ChecklistItem, actor: User, at) -> None:
    """The requester and the approvers hear of an item unticked after they relied on it."""
    blocks = " It stands in the way of deploying until it is ticked again." if item.gates_deploy else ""
    people = User.objects.filter(pk__in={change.requester_id, *change.standing_approver_ids}).exclude(
        pk=actor.pk
    )
    for person in people:
        if person.email:
            notification_send(
                channel="email",
                recipient=person.email,
                subject=f"{change.number}: “{item.text}” unticked after approval",
                body=f"{actor.display_name} unticked “{item.text}” at {at:%Y-%m-%d %H:%M} UTC, after "
                f"{change.number} ({change.title}) was approved.{blocks} {change.get_absolute_url()}",
            )


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


def change_notify(change: ChangeRequest, subject: str, body: str) -> None:
    """Tells the requester, the stakeholders and their channels (the deployment engine's news)."""
    _notify(change, subject, body)


def _notify(change: ChangeRequest, subject: str, body: str, *, stakeholders: bool = True) -> None:
    """The requester, and (unless told otherwise) the stakeholders and their channels."""
    people = {change.requester}
    if stakeholders:
        people |= set(change.stakeholders.all())
    for person in people:
        if person.email:
            notification_send(channel="email", recipient=person.email, subject=subject, body=body)
    if stakeholders:
        for channel in change.stakeholder_channels:
            notification_send(channel="slack", recipient=channel, subject=subject, body=body)


@transaction.atomic
def change_remind(*, change: ChangeRequest) -> list[str]:
    """Reminds pending approvers of a change that has waited past its policy's reminder time."""
    change = _locked(change)
    policy = change.environment.approval_policy
    now = clock.now()
    since = change.last_reminded_at or change.submitted_at
    if (
        change.status != S.SUBMITTED
        or since is None
        or now - since < timedelta(hours=policy.reminder_after_hours)
    ):
        return []
    people = [p for p in pending_approvers(change) if p.email]
    if not people:
        return []
    for person in people:
        notification_send(
            channel="email",
            recipient=person.email,
            subject=f"Waiting for your decision: {change.number} {change.title}",
            body=f"{change.number} has waited since {since:%Y-%m-%d %H:%M} UTC. {change.get_absolute_url()}",
        )
    change.last_reminded_at = now
    change.save(update_fields=["last_reminded_at"])
    audit_record(
        actor=None, action="change.remind", target=change, after={"reminded": [p.username for p in people]}
    )
    return [p.username for p in people]


# When changes deploy: schedules, windows and freezes.


def _locked_environment(environment_id: int) -> Environment:
    """Locks the environment's row: its schedule, windows and freezes change one writer at a time,
    so two people taking the same slot at once cannot both have it."""
    return Environment.objects.select_for_update().get(pk=environment_id)


@transaction.atomic
def change_schedule(*, actor: User, change: ChangeRequest, start, end) -> ChangeRequest:
    """Puts an approved change (or moves a scheduled one) into a slot that a window allows, no
    freeze covers and no other change holds; a refusal says why and suggests the next free slot."""
    from changes.calendar import Calendar, Slot

    change = _locked(change)
    if actor.pk != change.requester_id and not has_right(actor, Right.DEPLOYMENT_DEPLOY):
        raise ChangeError("Only the requester or a release manager schedules a change.")
    if change.status not in (S.APPROVED, S.SCHEDULED):
        raise ChangeError(
            f"{change.number} is {change.get_status_display().lower()}: only approved changes are scheduled.",
            conflict=True,
        )
    if end <= start:
        raise ChangeError("window_end: the slot must end after it starts.")
    environment = _locked_environment(change.environment_id)
    calendar = Calendar.of(environment, excluding_change_id=change.pk)
    slot, now = Slot(start, end), clock.now()
    emergency = change.change_type == ChangeType.EMERGENCY
    refusal = calendar.refusal(slot, now=now, emergency=emergency)
    if refusal:
        suggestion = calendar.next_slot(end - start, after=max(start, now), emergency=emergency)
        hint = (
            f" The next free slot is {suggestion.text(calendar.zone)}."
            if suggestion
            else " No slot of that length is free in the next three months."
        )
        raise SlotRefused(refusal + hint, next_slot=suggestion)
    before = {"scheduled_start": change.scheduled_start, "scheduled_end": change.scheduled_end}
    # An emergency change may go through a freeze; it is then an exception in every report.
    freeze = calendar.freeze_over(slot) if emergency else None
    change.freeze_override = freeze.reason if freeze else ""
    change.scheduled_start, change.scheduled_end = start, end
    change.updated_at = now
    change.save(update_fields=["scheduled_start", "scheduled_end", "freeze_override", "updated_at"])
    booked = {
        "scheduled_start": start,
        "scheduled_end": end,
        **({"freeze_override": freeze.reason} if freeze else {}),
    }
    when = slot.text(calendar.zone)
    integrations.checklist_prove(change=change, integration="schedule", evidence=f"Scheduled for {when}")
    if change.status == S.APPROVED:
        _transition(change, S.SCHEDULED, actor=actor, after=booked)
        _notify(
            change,
            f"{change.number} scheduled for {when}",
            f"{change.title} deploys to {environment} {when}.",
        )
    else:
        audit_record(
            actor=actor,
            action="change.rescheduled",
            target=change,
            before=before,
            after=booked,
        )
        _notify(
            change, f"{change.number} moved to {when}", f"{change.title} now deploys to {environment} {when}."
        )
    return change


@transaction.atomic
def change_unschedule(*, actor: User, change: ChangeRequest) -> ChangeRequest:
    """Gives the slot up: the change is approved again, waiting for a new one."""
    change = _locked(change)
    if actor.pk != change.requester_id and not has_right(actor, Right.DEPLOYMENT_DEPLOY):
        raise ChangeError("Only the requester or a release manager unschedules a change.")
    if change.status != S.SCHEDULED:
        raise ChangeError(
            f"{change.number} is {change.get_status_display().lower()}, not scheduled.", conflict=True
        )
    _transition(change, S.APPROVED, actor=actor, note="unscheduled")
    _notify(change, f"{change.number} unscheduled", f"{change.title} waits for a new slot.")
    return change


def _require(actor: User, right: str) -> None:
    if not has_right(actor, right):
        raise ChangeError(missing_right_message(right))


@transaction.atomic
def window_create(*, actor: User, environment: Environment, weekdays: list[int], start_time, end_time):
    from changes.models import DeploymentWindow

    _require(actor, Right.WINDOW_MANAGE)
    if not weekdays or any(not isinstance(d, int) or not 0 <= d <= 6 for d in weekdays):
        raise ChangeError("weekdays: list days of the week as numbers, 0 = Monday to 6 = Sunday.")
    if end_time <= start_time:
        raise ChangeError("end_time: a window ends after it starts, on the same day.")
    environment = _locked_environment(environment.pk)
    window = DeploymentWindow.objects.create(
        environment=environment,
        weekdays=sorted(set(weekdays)),
        start_time=start_time,
        end_time=end_time,
        created_by=actor,
        created_at=clock.now(),
    )
    audit_record(actor=actor, action="window.create", target=window, after=_window_snapshot(window))
    return window


def _window_snapshot(window) -> dict:
    return {
        "environment": window.environment.name,
        "weekdays": window.weekdays,
        "start_time": window.start_time.isoformat(timespec="minutes"),
        "end_time": window.end_time.isoformat(timespec="minutes"),
        "time_zone": window.environment.time_zone,
    }


@transaction.atomic
def window_delete(*, actor: User, window) -> None:
    _require(actor, Right.WINDOW_MANAGE)
    _locked_environment(window.environment_id)
    audit_record(actor=actor, action="window.delete", target=window, before=_window_snapshot(window))
    window.delete()


@transaction.atomic
def freeze_create(*, actor: User, environment: Environment, starts_at, ends_at, reason: str):
    """Freezes an environment. It may not overlap another freeze there (change that one
    instead); changes already scheduled inside it are named and their people told to move."""
    from changes.calendar import HOLDS_SLOT
    from changes.models import Freeze

    _require(actor, Right.FREEZE_MANAGE)
    if not reason.strip():
        raise ChangeError("reason: say why the environment is frozen.")
    if ends_at <= starts_at:
        raise ChangeError("ends_at: a freeze ends after it starts.")
    if ends_at <= clock.now():
        raise ChangeError("ends_at: that freeze would be over already.")
    environment = _locked_environment(environment.pk)
    clash = environment.freezes.filter(starts_at__lt=ends_at, ends_at__gt=starts_at).first()
    if clash:
        raise ChangeError(
            f"It overlaps the freeze of {clash.starts_at:%Y-%m-%d %H:%M}-{clash.ends_at:%Y-%m-%d %H:%M} UTC "
            f"({clash.reason}): change that freeze instead.",
            conflict=True,
        )
    freeze = Freeze.objects.create(
        environment=environment,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason.strip(),
        created_by=actor,
        created_at=clock.now(),
    )
    inside = list(
        ChangeRequest.objects.filter(
            environment=environment,
            status__in=HOLDS_SLOT,
            scheduled_start__lt=ends_at,
            scheduled_end__gt=starts_at,
        )
    )
    audit_record(
        actor=actor,
        action="freeze.create",
        target=freeze,
        after={**_freeze_snapshot(freeze), "scheduled_inside": [c.number for c in inside]},
    )
    for change in inside:
        _notify(
            change,
            f"{change.number} is scheduled inside a freeze",
            f"{environment} is frozen from {starts_at:%Y-%m-%d %H:%M} to {ends_at:%Y-%m-%d %H:%M} UTC "
            f"({freeze.reason}). Move {change.number} to another slot.",
        )
    freeze.scheduled_inside = inside
    return freeze


def _freeze_snapshot(freeze) -> dict:
    return {
        "environment": freeze.environment.name,
        "starts_at": freeze.starts_at,
        "ends_at": freeze.ends_at,
        "reason": freeze.reason,
    }


@transaction.atomic
def freeze_delete(*, actor: User, freeze) -> None:
    _require(actor, Right.FREEZE_MANAGE)
    _locked_environment(freeze.environment_id)
    audit_record(actor=actor, action="freeze.delete", target=freeze, before=_freeze_snapshot(freeze))
    freeze.delete()


# The staging soak.


@transaction.atomic
def staging_run_record(
    *, actor: User | None, environment: Environment, commit: str, result: str, version: str = "", url=""
):
    """Records what CI reported about a commit in a staging environment (a person's CI token,
    checked for its scope by the caller, or GitHub's signed event when `actor` is None), stamped
    with the portal's time, then brings the soak gate of every open change at that commit up to date."""
    from changes.models import COMMIT, StagingRun

    if actor is not None:
        _require(actor, Right.STAGING_REPORT)
    if result not in StagingRun.Result.values:
        raise ChangeError(f"result: one of {', '.join(StagingRun.Result.values)}.")
    commit = commit.strip().lower()
    try:
        COMMIT(commit)
    except ValidationError:
        raise ChangeError("commit: give the full id of the commit that ran (40 hex digits).") from None
    if environment.is_production:
        raise ChangeError(f"environment: {environment} is deployed by Greenlight itself; it does not soak.")
    run = StagingRun.objects.create(
        environment=environment,
        commit=commit,
        version=(version.strip() or commit[:12])[:100],
        result=result,
        at=clock.now(),
        url=url,
        recorded_by=actor,
    )
    audit_record(
        actor=actor,
        action=f"staging.{result}",
        target=run,
        after={"environment": environment.name, "commit": commit, "version": run.version, "url": url},
    )
    at_commit = ChangeRequest.objects.filter(Q(pull__head_sha=commit) | Q(approved_commit=commit)).open()
    for change in at_commit.distinct():
        soak_check(change=change)
    return run


@transaction.atomic
def staging_run_record_once(*, environment: Environment, commit: str, version: str, result: str, url: str):
    """Records a report GitHub may deliver more than once (a redelivery, a retry after a timeout):
    a report with the same environment, commit, result and link (the deployment's run, or its
    status) is the same report, recorded the first time only. Returns the run, or None when it was
    recorded already. The environment is locked, so two deliveries at once record it once."""
    from changes.models import StagingRun

    Environment.objects.select_for_update().filter(pk=environment.pk).first()
    same = StagingRun.objects.filter(environment=environment, commit=commit.strip().lower(), result=result)
    if url and same.filter(url=url).exists():
        return None
    return staging_run_record(
        actor=None, environment=environment, commit=commit, version=version, result=result, url=url
    )


@transaction.atomic
def soak_check(*, change: ChangeRequest) -> bool:
    """Ticks or unticks the change's staging soak item from staging's reports; True when open."""
    from changes.soak import soak_of

    change = _locked(change)
    soak = soak_of(change, now=clock.now())
    integrations.checklist_prove(
        change=change, integration="staging_soak", evidence=soak.message if soak.open else "", done=soak.open
    )
    return soak.open


# Standard change templates.


@transaction.atomic
def standard_template_create(*, actor: User, data: dict):
    """A pre-approved kind of change, kept by policy administrators (the caller checked a fresh OTP)."""
    from changes.models import StandardChangeTemplate

    _require(actor, Right.POLICY_MANAGE)
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
def standard_template_retire(*, actor: User, template):
    """No new change is filed from it; those filed keep it."""
    _require(actor, Right.POLICY_MANAGE)
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
