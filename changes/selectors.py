"""Reads of change requests with a constant number of queries, however many rows there are."""

from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce

from changes.choices import ChangeStatus, Decision
from changes.models import Approval, ChangeRequest, ChecklistItem, Comment
from changes.quorum import QuorumSummary, quorum_summary
from portal.models import AuditEvent
from portal.roles import Right, has_right


def changes_visible_to(user) -> QuerySet[ChangeRequest]:
    """Every role may view change requests; the list carries what its rows show, in one query."""
    if not has_right(user, Right.CHANGE_VIEW):
        return ChangeRequest.objects.none()
    return (
        ChangeRequest.objects.select_related("environment", "requester")
        .prefetch_related("services")
        .annotate(
            checklist_total=_count(ChecklistItem.objects.all()),
            checklist_done=_count(ChecklistItem.objects.filter(done=True)),
            approval_count=_count(
                Approval.objects.filter(dismissed_at__isnull=True, decision=Decision.APPROVE)
            ),
        )
    )


def _count(related: QuerySet):
    """A correlated count per change (a subquery, not a join, so counts never multiply)."""
    counted = (
        related.filter(change=OuterRef("pk")).order_by().values("change").annotate(n=Count("*")).values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def change_detail(user, pk: int) -> ChangeRequest:
    """One change with all its page shows, prefetched: checklist, decisions, comments, services."""
    return (
        changes_visible_to(user)
        .select_related("environment__approval_policy")
        .prefetch_related(
            "checklist__done_by",
            Prefetch(
                "approvals", queryset=Approval.objects.select_related("approver").order_by("created_at", "id")
            ),
            Prefetch("comments", queryset=Comment.objects.select_related("author")),
            "stakeholders",
        )
        .get(pk=pk)
    )


def change_quorum(change: ChangeRequest) -> QuorumSummary:
    return quorum_summary(change, list(change.approvals.all()), change.environment.approval_policy)


def change_history(change: ChangeRequest) -> QuerySet[AuditEvent]:
    """The change's timeline, from the audit trail: one query, oldest first."""
    return AuditEvent.objects.filter(object_type="changes.changerequest", object_id=str(change.pk)).order_by(
        "id"
    )


def my_work(user) -> dict:
    """The overview's "My work": my drafts, changes waiting for my decision, scheduled soon."""
    base = changes_visible_to(user)
    waiting = (
        base.filter(status=ChangeStatus.SUBMITTED)
        .exclude(requester=user)
        .exclude(approvals__approver=user, approvals__dismissed_at__isnull=True)
    )
    return {
        "drafts": list(base.filter(requester=user, status=ChangeStatus.DRAFT)[:10]),
        "mine_open": list(base.filter(requester=user).open().exclude(status=ChangeStatus.DRAFT)[:10]),
        "waiting_for_me": list(waiting[:10]) if has_right(user, Right.CHANGE_APPROVE) else [],
        "scheduled": list(base.filter(status=ChangeStatus.SCHEDULED)[:10]),
    }
