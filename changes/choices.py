from django.db import models


class ChangeStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    SCHEDULED = "scheduled", "Scheduled"
    DEPLOYING = "deploying", "Deploying"
    VERIFYING = "verifying", "Verifying"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"


class ChangeType(models.TextChoices):
    STANDARD = "standard", "Standard"
    NORMAL = "normal", "Normal"
    EMERGENCY = "emergency", "Emergency"


class Risk(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class VersionBump(models.TextChoices):
    MAJOR = "major", "Major (breaking changes)"
    MINOR = "minor", "Minor (new features, backward compatible)"
    PATCH = "patch", "Patch (bug fixes, backward compatible)"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REQUEST_CHANGES = "request_changes", "Request changes"


S = ChangeStatus
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.SUBMITTED: frozenset({S.APPROVED, S.CHANGES_REQUESTED, S.REJECTED, S.CANCELLED}),
    S.CHANGES_REQUESTED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.REJECTED: frozenset({S.SUBMITTED, S.CANCELLED}),
    # An edit after approval sends the change back to submitted, its approvals dismissed.
    S.APPROVED: frozenset({S.SCHEDULED, S.SUBMITTED, S.CHANGES_REQUESTED, S.REJECTED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.APPROVED, S.DEPLOYING, S.SUBMITTED, S.CANCELLED}),
    S.DEPLOYING: frozenset({S.VERIFYING, S.FAILED, S.ROLLED_BACK}),
    S.VERIFYING: frozenset({S.COMPLETED, S.FAILED, S.ROLLED_BACK}),
    S.COMPLETED: frozenset({S.ROLLED_BACK}),
    S.FAILED: frozenset(),
    S.ROLLED_BACK: frozenset(),
    S.CANCELLED: frozenset(),
}

# The requester submits from these (an approved change goes back to submitted only by an edit).
SUBMITTABLE = frozenset({S.DRAFT, S.CHANGES_REQUESTED, S.REJECTED})
# The checklist is closed in these: the change is over, or rejected (until an edit reopens it).
CLOSED = frozenset({S.COMPLETED, S.CANCELLED, S.FAILED, S.ROLLED_BACK, S.REJECTED})
# While a change is in one of these, the requester may still edit it.
EDITABLE = frozenset({S.DRAFT, S.SUBMITTED, S.CHANGES_REQUESTED, S.REJECTED, S.APPROVED, S.SCHEDULED})
# Approvers decide only on a change that is waiting for them (or already approved: more approvals
# are welcome, and a late rejection or request for changes still counts).
DECIDABLE = frozenset({S.SUBMITTED, S.APPROVED})
# The change was approved and has not been sent back since: approvers relied on its checklist.
APPROVED_ONWARDS = frozenset(
    {S.APPROVED, S.SCHEDULED, S.DEPLOYING, S.VERIFYING, S.COMPLETED, S.FAILED, S.ROLLED_BACK}
)
