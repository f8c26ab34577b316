"""Whether a change has the approvals its policy asks for, and in words what is missing.

Only standing decisions on the current revision, given on the commit under review, count; one
person counts once, whatever capacities they hold; a rejection or a request for changes blocks until
it is answered.

A standard change needs only the approvals its pre-approved template names. An emergency change
is approved up front by the policy's emergency rule (by default one release manager or SRE); the
full policy is its review, owed afterwards.
"""

from dataclasses import dataclass, field

from changes.choices import ChangeStatus, ChangeType, Decision
from portal.roles import Capacity, Role


@dataclass(frozen=True)
class QuorumSummary:
    approvals: int
    required_approvals: int
    code_owner_approvals: int
    required_code_owner_approvals: int
    sign_offs: frozenset[str]
    required_sign_offs: tuple[str, ...]
    blockers: tuple[str, ...] = field(default_factory=tuple)
    # The roles whose approvals count (the emergency rule); empty: anyone who may approve.
    approver_roles: tuple[str, ...] = ()
    # The commit the approvals counted were given on (empty with no repository).
    commit: str = ""

    @property
    def missing_sign_offs(self) -> list[str]:
        return [c for c in self.required_sign_offs if c not in self.sign_offs]

    @property
    def satisfied(self) -> bool:
        return (
            not self.blockers
            and self.approvals >= self.required_approvals
            and self.code_owner_approvals >= self.required_code_owner_approvals
            and not self.missing_sign_offs
        )

    def explain(self) -> str:
        """'2 of 3 approvals; code owner approval missing; security sign-off missing'."""
        parts = [f"{self.approvals} of {self.required_approvals} approvals"]
        if self.approver_roles:
            roles = " or ".join(Role(r).label.lower() for r in self.approver_roles)
            parts[0] += f" from a {roles}"
        if self.commit:
            parts[0] += f" on {self.commit[:10]}"
        if self.code_owner_approvals < self.required_code_owner_approvals:
            parts.append(
                f"{self.code_owner_approvals} of {self.required_code_owner_approvals} code owner approvals"
            )
        for capacity in self.missing_sign_offs:
            parts.append(f"{Capacity(capacity).label.replace(' sign-off', '').lower()} sign-off missing")
        parts.extend(self.blockers)
        return "; ".join(parts)


# Before it deploys, a change is judged at its pull request's head; from then on at the commit
# its quorum approved, which is what the release merged.
BEFORE_DEPLOY = (
    ChangeStatus.DRAFT,
    ChangeStatus.SUBMITTED,
    ChangeStatus.CHANGES_REQUESTED,
    ChangeStatus.REJECTED,
    ChangeStatus.APPROVED,
    ChangeStatus.SCHEDULED,
    ChangeStatus.CANCELLED,
)


def reviewed_commit(change) -> str:
    """The commit decisions on the change are given on, and count on: the head of its pull
    request as last read (empty before any read, or with no repository) until it deploys, then
    the commit its quorum approved."""
    from changes.models import pull_request_of

    if change.status not in BEFORE_DEPLOY:
        return change.approved_commit
    pull = pull_request_of(change)
    return pull.head_sha if pull is not None else ""


def quorum_summary(change, approvals, policy, *, full: bool = False) -> QuorumSummary:
    """`approvals`: the change's approvals (a prefetched list is fine); filtered here. An
    emergency change is judged by the emergency rule unless `full` (its review) is asked."""
    commit = reviewed_commit(change)
    standing = [a for a in approvals if a.dismissed_at is None and a.revision == change.revision]
    # An approval counts on the commit it was given on; a rejection stands until it is answered.
    approving = [a for a in standing if a.decision == Decision.APPROVE and a.commit == commit]
    blockers = tuple(
        f"{a.approver.display_name} {'rejected it' if a.decision == Decision.REJECT else 'requested changes'}"
        for a in standing
        if a.decision != Decision.APPROVE
    )
    if change.change_type == ChangeType.EMERGENCY and not full:
        roles = tuple(policy.emergency_approver_roles)
        return QuorumSummary(
            approvals=len({a.approver_id for a in approving if a.approver.role in roles}),
            required_approvals=policy.emergency_min_approvals,
            code_owner_approvals=0,
            required_code_owner_approvals=0,
            sign_offs=frozenset(a.capacity for a in approving if a.capacity),
            required_sign_offs=(),
            blockers=blockers,
            approver_roles=roles,
            commit=commit,
        )
    # The template's requirements stand in for the policy's (both name the same three).
    rules = change.standard_template if change.standard_template_id else policy
    return QuorumSummary(
        approvals=len({a.approver_id for a in approving}),
        required_approvals=rules.min_approvals,
        code_owner_approvals=len({a.approver_id for a in approving if a.code_owner}),
        required_code_owner_approvals=rules.min_code_owner_approvals,
        sign_offs=frozenset(a.capacity for a in approving if a.capacity),
        required_sign_offs=tuple(rules.required_sign_offs),
        blockers=blockers,
        commit=commit,
    )
