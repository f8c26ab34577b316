"""Approvals and their kin: a decision with its code, decisions dismissed when the head moves,
the full review an emergency change owes, reminders of pending decisions."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from changes import integrations, snapshots
from changes.choices import DECIDABLE, ChangeType, Decision
from changes.models import Approval, ChangeRequest
from changes.quorum import quorum_summary, reviewed_commit
from changes.rules import ChangeError, decide_refusal, refuse
from changes.selectors import NEW_COMMITS, code_owner_logins, pending_approvers
from changes.services.base import S, _locked, _notify, _transition
from portal import clock
from portal.models import User
from portal.services import audit_record, notification_send


def _dismiss(decisions: QuerySet[Approval], *, reason: str, subject: str, body: str) -> list[Approval]:
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
    refuse(decide_refusal(actor, change))
    # An emergency change past approval still takes the decisions of its owed full review.
    reviewing = change.review_pending and change.status not in DECIDABLE
    if capacity and capacity not in actor.capacity_names():
        raise ChangeError(f"You do not hold the {capacity} capacity, so you cannot sign off as it.")
    if capacity and decision != Decision.APPROVE:
        raise ChangeError("A sign-off is an approval; reject or request changes without a capacity.")
    commit = reviewed_commit(change)
    standing = change.approvals.filter(approver=actor, dismissed_at__isnull=True).first()
    replaces = standing.decision if standing is not None else None
    now = clock.now()
    if standing is not None:
        if standing.decision == decision and standing.capacity == capacity:
            said: dict[str, str] = {Decision.APPROVE: "approved", Decision.REJECT: "rejected"}
            done = said.get(decision, "requested changes on")
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
    assert change.approved_at is not None  # just moved to approved, which stamps it
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
    assert change.review_due_at is not None  # only a change that owes its review is checked
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
