"""Who may do what to a change now: one refusal predicate per guarded act, written once. The
service raises what the predicate returns (inside its lock, on the locked row); the page and the
API's `actions` explain it, or offer the act when it returns None. So a page never offers what the
service refuses, and a refusal reads the same wherever it is met.

A predicate returns None when the act is allowed, else the error the service raises: a
PermissionDenied (403) when the act is not this person's to do at all, a StateRefusal (409) when
the change's state does not take the act now (the pages do not offer an act refused for its state,
except where they say why), or another ChangeError (400, or 409 when it clashes with the state)."""

from django.core.exceptions import PermissionDenied

from changes.choices import ALLOWED_TRANSITIONS, CLOSED, DECIDABLE, EDITABLE, SUBMITTABLE, Decision
from changes.choices import ChangeStatus as S
from changes.models import Approval, ChangeRequest, ChecklistItem, pull_request_of
from changes.quorum import reviewed_commit
from integrations import scm
from portal.errors import Refusal
from portal.models import User
from portal.roles import Right, has_right, missing_right_message


class ChangeError(Refusal):
    """A rule refused the act; `conflict` marks a clash with the change's current state (409)."""


class StateRefusal(ChangeError):
    """The change's state does not take the act now (409)."""

    conflict = True


Refused = ChangeError | PermissionDenied | None


def _status(change: ChangeRequest) -> str:
    return change.get_status_display().lower()


def _releaser(user: User, change: ChangeRequest) -> bool:
    """The requester, or a release manager (who deploys, so books and cancels too)."""
    return user.pk == change.requester_id or has_right(user, Right.DEPLOYMENT_DEPLOY)


def edit_refusal(user: User, change: ChangeRequest) -> Refused:
    if user.pk != change.requester_id:
        return PermissionDenied("Only the requester edits a change; comment to suggest an edit.")
    if change.status not in EDITABLE:
        return StateRefusal(f"{change.number} is {_status(change)} and can no longer be edited.")
    return None


def objections(change: ChangeRequest) -> list[Approval]:
    """The rejections and requests for changes that stand (the prefetched approvals when there are)."""
    return [a for a in change.approvals.all() if a.dismissed_at is None and a.decision != Decision.APPROVE]


def submit_refusal(user: User, change: ChangeRequest) -> Refused:
    if user.pk != change.requester_id:
        return PermissionDenied("Only the requester submits a change.")
    if change.status not in SUBMITTABLE:
        return StateRefusal(
            f"{change.number} is {_status(change)}: only a draft or a sent-back change is submitted."
        )
    if change.status in (S.CHANGES_REQUESTED, S.REJECTED) and objections(change):
        return ChangeError(
            "Edit the change to answer the request for changes before submitting it again.", conflict=True
        )
    return None


def decide_refusal(user: User, change: ChangeRequest) -> Refused:
    """Whether `user` may approve, reject or request changes now (what they decide, and as which
    capacity, the service checks with the decision)."""
    if not has_right(user, Right.CHANGE_APPROVE):
        return PermissionDenied(missing_right_message(Right.CHANGE_APPROVE))
    if user.pk == change.requester_id:
        return ChangeError("Nobody approves their own change.")
    # An emergency change past approval still takes the decisions of its owed full review.
    reviewing = change.review_pending and change.status not in DECIDABLE
    if change.status not in DECIDABLE and not reviewing:
        return StateRefusal(
            f"{change.number} is {_status(change)}: decisions are taken while it is submitted or approved."
        )
    if not reviewed_commit(change) and scm.configured():
        pull = pull_request_of(change)
        why = f" (the last read failed: {pull.error})" if pull is not None and pull.error else ""
        return ChangeError(
            f"{change.number}'s branch has not been read from the repository yet{why}. A decision is "
            "given on a commit, so it waits for the read, a few seconds after submission.",
            conflict=True,
        )
    return None


def cancel_refusal(user: User, change: ChangeRequest) -> Refused:
    if not _releaser(user, change):
        return PermissionDenied("Only the requester or a release manager cancels a change.")
    if S.CANCELLED not in ALLOWED_TRANSITIONS[change.status]:
        return StateRefusal(change.transition_error(S.CANCELLED))
    return None


def schedule_refusal(user: User, change: ChangeRequest) -> Refused:
    """Whether `user` may book (or move) the change's slot; which slot, the calendar judges."""
    if not _releaser(user, change):
        return PermissionDenied("Only the requester or a release manager schedules a change.")
    if change.status not in (S.APPROVED, S.SCHEDULED):
        return StateRefusal(f"{change.number} is {_status(change)}: only approved changes are scheduled.")
    return None


def unschedule_refusal(user: User, change: ChangeRequest) -> Refused:
    if not _releaser(user, change):
        return PermissionDenied("Only the requester or a release manager unschedules a change.")
    if change.status != S.SCHEDULED:
        return StateRefusal(f"{change.number} is {_status(change)}, not scheduled.")
    return None


def tick_refusal(user: User, change: ChangeRequest, item: ChecklistItem) -> Refused:
    """Whether `user` may tick or untick the item: a person's item (an integration proves its
    own), by whom the item's own rule names, while the change is open."""
    from changes import integrations

    if item.integration:
        label = integrations.LABELS.get(item.integration, item.integration)
        state = "ticks it" if integrations.is_connected(item.integration) else "is not connected yet"
        return ChangeError(f"“{item.text}” is proven by {label}, which {state}; nobody ticks it by hand.")
    if not has_right(user, Right.CHANGE_CREATE):
        return PermissionDenied(missing_right_message(Right.CHANGE_CREATE))
    refusal = item.tick_refusal(user, change)
    if refusal:
        return ChangeError(refusal)
    if change.status in CLOSED:
        return StateRefusal(f"{change.number} is {_status(change)}; its checklist is closed.")
    return None


def refuse(refusal: Refused) -> None:
    """Raises the predicate's refusal, if any (the services' one way of saying no)."""
    if refusal is not None:
        raise refusal


def explained(refusal: Refused) -> str | None:
    """The refusal in words, for a page or the API's `actions`."""
    if refusal is None:
        return None
    if isinstance(refusal, PermissionDenied):
        return str(refusal)
    return " ".join(refusal.messages)
