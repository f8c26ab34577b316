"""Reads of change requests with a constant number of queries, however many rows there are."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, F, IntegerField, Model, OuterRef, Prefetch, QuerySet
from django.db.models.expressions import RawSQL

from changes import rules
from changes.choices import ChangeStatus, Decision
from changes.models import (
    Approval,
    ChangeRequest,
    ChangeRequestQuerySet,
    ChecklistItem,
    CheckRun,
    Comment,
    PullCommit,
    PullRequest,
    Release,
    pull_request_of,
)
from changes.quorum import QuorumSummary, quorum_summary
from portal.models import AuditEvent, User
from portal.roles import Right, has_right

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _Named(TypedDict):
        service_names: list[str]

    class _Shown(_Named):
        checklist_total: int
        checklist_done: int
        approval_count: int

    # A row of a page with its services' names (`with_service_names`); a change as its page and
    # API show it, with its progress counted too (`change_detail`).
    NamedChange = WithAnnotations[ChangeRequest, _Named]
    ShownChange = WithAnnotations[ChangeRequest, _Shown]


def changes_visible_to(user: User | AnonymousUser) -> ChangeRequestQuerySet:
    """Every role may view change requests."""
    if not has_right(user, Right.CHANGE_VIEW):
        return ChangeRequest.objects.none()
    return ChangeRequest.objects.all()


# What a row of the list needs; the long texts stay in the database until the detail asks.
LIST_COLUMNS = [
    "id",
    "title",
    "change_type",
    "risk",
    "status",
    "revision",
    "version_bump",
    "created_at",
    "updated_at",
    "submitted_at",
    "approved_at",
    "review_due_at",
    "reviewed_at",
    "requester_id",
    "environment_id",
    "environment__name",
    "environment__display_name",
    "requester__username",
    "requester__first_name",
    "requester__last_name",
]


# Everything a row of the list shows: the rows' HTML is remembered by these values (portal.fragments).
LIST_SHOWS = [
    *LIST_COLUMNS,
    *("required_approvals", "checklist_total", "checklist_done", "approval_count", "service_names"),
    "review_overdue",  # turns with the clock, not with a row
]


def list_row_shows(change: ChangeRequest) -> list[object]:
    values: list[object] = []
    for name in LIST_SHOWS:
        value: object = change
        for part in name.split("__"):
            value = getattr(value, part)
        values.append(value)
    return values


def change_list(user: User | AnonymousUser) -> QuerySet[ChangeRequest]:
    """The list's rows with what they show (progress, the policy's quorum size) in one query;
    `with_service_names` adds a page's services in one more. The policy itself is not joined:
    its checklist is large and each row would decode it again."""
    return (
        changes_visible_to(user)
        .select_related("environment", "requester")
        .only(*LIST_COLUMNS)
        .annotate(
            required_approvals=F("environment__approval_policy__min_approvals"),
            checklist_total=_count(ChecklistItem),
            checklist_done=_count(ChecklistItem, "done"),
            approval_count=_count(
                Approval, "dismissed_at IS NULL AND decision = %s", [Decision.APPROVE.value]
            ),
        )
    )


def with_service_names(rows: list[ChangeRequest]) -> list[ChangeRequest]:
    """Gives each row of a page its services' names (`service_names`) from one query on the link
    table: a row shows names only, where a prefetch would build a manager and a Service for each."""
    links = ChangeRequest.services.through.objects.filter(changerequest_id__in=[row.pk for row in rows])
    names: dict[int, list[str]] = {}
    for change_id, name in links.order_by("service__name").values_list("changerequest_id", "service__name"):
        names.setdefault(change_id, []).append(name)
    for row in rows:
        cast("NamedChange", row).service_names = names.get(row.pk, [])
    return rows


def _count(model: type[Model], condition: str = "", params: list[str] | None = None) -> RawSQL:
    """A correlated count per change: a subquery, not a join, so counts never multiply. Written
    as SQL because the ORM spends longer composing three such subqueries than PostgreSQL
    spends running them."""
    where = f" AND {condition}" if condition else ""
    table, changes = model._meta.db_table, ChangeRequest._meta.db_table
    # Only table names from the models and this module's fixed conditions; values go as parameters.
    sql = f'(SELECT COUNT(*) FROM "{table}" WHERE "{table}"."change_id" = "{changes}"."id"{where})'  # noqa: S608
    return RawSQL(sql, params or [], output_field=IntegerField())  # noqa: S611


def change_shown(user: User | AnonymousUser, pk: int) -> "ShownChange":
    """`change_detail` for showing it: kept in the cache until a write to it (changes/snapshots.py).
    An act reads `change_detail` itself."""
    from changes import snapshots

    if not has_right(user, Right.CHANGE_VIEW):
        raise ChangeRequest.DoesNotExist
    return cast("ShownChange", snapshots.shown(pk, lambda: change_detail(user, pk)))


def change_detail(user: User | AnonymousUser, pk: int) -> "ShownChange":
    """One change with what its page and API show, prefetched: checklist, decisions, stakeholders,
    comments, checks, its services' names. Its progress is counted from the prefetched rows, as the
    list counts it in SQL."""
    change = (
        changes_visible_to(user)
        .select_related(
            "environment__approval_policy", "requester", "incident", "standard_template", "pull", "release"
        )
        .defer("environment__approval_policy__checklist")  # what new changes copy; never shown here
        .prefetch_related(
            "stakeholders",
            Prefetch("checklist", queryset=ChecklistItem.objects.select_related("done_by")),
            Prefetch(
                "approvals", queryset=Approval.objects.select_related("approver").order_by("created_at", "id")
            ),
            Prefetch("comments", queryset=Comment.objects.select_related("author")),
            "checks",
        )
        .get(pk=pk)
    )
    with_service_names([change])
    shown = cast("ShownChange", change)
    checklist = change.checklist.all()
    shown.checklist_total = len(checklist)
    shown.checklist_done = sum(1 for item in checklist if item.done)
    shown.approval_count = sum(
        1 for a in change.approvals.all() if a.dismissed_at is None and a.decision == Decision.APPROVE
    )
    return shown


def change_comments(change: ChangeRequest) -> list[Comment]:
    """The comments with their authors: those read with the change (`change_detail`), else one query."""
    if "comments" in getattr(change, "_prefetched_objects_cache", {}):
        return list(change.comments.all())
    return list(change.comments.select_related("author"))


def change_quorum(change: ChangeRequest) -> QuorumSummary:
    return quorum_summary(change, list(change.approvals.all()), change.environment.approval_policy)


def change_review(change: ChangeRequest) -> QuorumSummary:
    """The full policy's quorum, which an emergency change approved up front owes afterwards."""
    return quorum_summary(change, list(change.approvals.all()), change.environment.approval_policy, full=True)


def change_history(change: ChangeRequest) -> QuerySet[AuditEvent]:
    """The change's timeline, from the audit trail: one query, oldest first."""
    return AuditEvent.objects.filter(object_type="changes.changerequest", object_id=str(change.pk)).order_by(
        "id"
    )


def change_timeline(change: ChangeRequest) -> list[AuditEvent]:
    """The change's timeline (oldest first), as its page shows it: kept in the cache beside the
    change until the next event on it (changes/snapshots.py)."""
    from changes import snapshots

    return cast(
        "list[AuditEvent]", snapshots.shown(change.pk, lambda: list(change_history(change)), part="timeline")
    )


def unticked_after_approval(history: Iterable[AuditEvent]) -> dict[str, AuditEvent]:
    """The last time each checklist item (by key) was unticked after the change was approved, from
    the change's history (oldest first): the approvers relied on it ticked."""
    last: dict[str, AuditEvent] = {}
    for event in history:
        after: dict[str, Any] = event.after or {}
        if event.action == "change.checklist_untick" and after.get("after_approval"):
            last[after["item"]] = event  # every untick names its item
    return last


def my_work(user: User) -> dict[str, list[ChangeRequest]]:
    """The overview's "My work": my drafts, changes waiting for my decision, scheduled soon."""
    base = changes_visible_to(user).only("id", "title", "status", "requester_id")
    decided = Approval.objects.filter(change=OuterRef("pk"), approver=user, dismissed_at__isnull=True)
    waiting = base.filter(status=ChangeStatus.SUBMITTED).exclude(requester=user).exclude(Exists(decided))
    return {
        "drafts": list(base.filter(requester=user, status=ChangeStatus.DRAFT)[:10]),
        "mine_open": list(base.filter(requester=user).open().exclude(status=ChangeStatus.DRAFT)[:10]),
        "waiting_for_me": list(waiting[:10]) if has_right(user, Right.CHANGE_APPROVE) else [],
        "scheduled": list(base.filter(status=ChangeStatus.SCHEDULED)[:10]),
    }


NEW_COMMITS = "New commits since the approval"


def stale_approval_of(user: User | AnonymousUser, change: ChangeRequest) -> Approval | None:
    """The user's approval that new commits dismissed, while they have not decided again (from
    the prefetched decisions)."""
    mine = [a for a in change.approvals.all() if a.approver_id == user.pk]
    if not mine or mine[-1].dismissed_at is None or not mine[-1].dismissed_reason.startswith(NEW_COMMITS):
        return None
    return mine[-1]


# The acts a change's page offers, each by its predicate (changes.rules); whether the page says why
# an act refused for the change's state is not offered (edit and decide say it; the others are
# simply not offered then).
ACTS = (
    ("edit", rules.edit_refusal, True),
    ("submit", rules.submit_refusal, False),
    ("decide", rules.decide_refusal, True),
    ("cancel", rules.cancel_refusal, False),
    ("schedule", rules.schedule_refusal, False),
    ("unschedule", rules.unschedule_refusal, False),
)


def change_actions(user: User, change: ChangeRequest) -> dict[str, str | None]:
    """What this user may do to this change now: action -> None when allowed, or why it is not.
    An act not theirs to do (a 403), or refused for the state where the page does not say why, is
    left out."""
    actions: dict[str, str | None] = {}
    for act, predicate, says_state in ACTS:
        refusal = predicate(user, change)
        if isinstance(refusal, PermissionDenied) or (
            isinstance(refusal, rules.StateRefusal) and not says_state
        ):
            continue
        actions[act] = rules.explained(refusal)
    return actions


def deploy_gates(change: ChangeRequest, summary: QuorumSummary) -> list[dict[str, str]]:
    """What stands between the change and Deploy, each gate with its state in words."""
    from changes.integrations import LABELS, is_connected

    items = [i for i in change.checklist.all() if i.gates_deploy]
    open_items = [i for i in items if not i.done]
    waiting = sorted({i.integration for i in open_items if i.integration and not is_connected(i.integration)})
    gates = [
        {"name": "Approvals", "state": "ok" if summary.satisfied else "blocked", "detail": summary.explain()},
        {
            "name": "Checklist",
            "state": "ok" if not open_items else "blocked",
            "detail": f"{len(items) - len(open_items)} of {len(items)} pre-deployment items done"
            + (f"; not connected yet: {', '.join(LABELS.get(w, w) for w in waiting)}" if waiting else ""),
        },
    ]
    from changes.calendar import deploy_timing
    from changes.soak import soak_of
    from portal import clock

    now = clock.now()
    soak = soak_of(change, now=now)
    gates.append({"name": "Staging soak", "state": "ok" if soak.open else "blocked", "detail": soak.message})
    may, when = deploy_timing(change, now=now)
    gates.append({"name": "When", "state": "ok" if may else "blocked", "detail": when})
    policy = change.environment.approval_policy
    pull = pull_request_of(change)
    if policy.checks_must_pass:
        runs = list(change.checks.all())
        if pull is not None and pull.head_sha:  # only the checks of the head that is released count
            runs = [run for run in runs if run.head_sha == pull.head_sha]
        gates.append(_checks_gate(runs, pull.required_checks if pull else []))
    if pull is not None and pull.number:
        gates.append(_review_gate(pull, change.target_branch))
    elif settings.GITHUB_REPOSITORY or change.pull_request:
        gates.append(_review_unread_gate(pull, change))
    if policy.signed_commits_required:
        gates.append(_signed_gate(pull, change.source_branch))
    if pull is not None and pull.read_at is not None:
        gates.append(_contents_gate(change))
    ahead = ahead_of_live(change.environment_id)
    if ahead:
        gates.append(_live_gate(change, ahead))
    return gates


@dataclass(frozen=True)
class Shipped:
    """A commit the change's release would ship and the changes it belongs to: this change, when no
    other change's branch brings it; else those changes, each with whether it was approved on it."""

    sha: str
    subject: str
    owners: tuple[ChangeRequest, ...]
    unapproved: tuple[ChangeRequest, ...] = ()

    @property
    def others(self) -> tuple[ChangeRequest, ...]:
        return tuple(owner for owner in self.owners if owner.pk != self.of_change)

    of_change: int = 0


def _approved_on_its_head(other: ChangeRequest, pull: PullRequest) -> bool:
    return (
        other.status in (ChangeStatus.APPROVED, ChangeStatus.SCHEDULED)
        and other.approved_commit == pull.head_sha
    )


def change_contents(change: ChangeRequest) -> list[Shipped] | None:
    """What the change's release would ship, commit by commit, with the change each belongs to
    (two queries); None before its branch was read. A commit that another change's branch brings
    too is that change's work: it ships only if that change was approved on it (they are then
    released together), never on this change's approval alone."""
    pull = pull_request_of(change)
    if pull is None or pull.read_at is None:
        return None
    commits = list(pull.commits.all())
    claims: dict[str, list[tuple[ChangeRequest, bool]]] = {}
    others = (
        PullCommit.objects.filter(sha__in=[c.sha for c in commits])
        .exclude(pull__change_id=change.pk)
        .select_related("pull__change")
        .order_by("pull__change_id")
    )
    for row in others:
        claims.setdefault(row.sha, []).append(
            (row.pull.change, _approved_on_its_head(row.pull.change, row.pull))
        )
    shipped: list[Shipped] = []
    for commit in commits:
        claimed = claims.get(commit.sha, [])
        owners = tuple(other for other, _ in claimed) or (change,)
        unapproved = tuple(other for other, ok in claimed if not ok)
        shipped.append(Shipped(commit.sha, commit.subject, owners, unapproved, of_change=change.pk))
    return shipped


def contents_refusal(change: ChangeRequest, contents: list[Shipped]) -> str:
    """Why the release may not ship what its branch brings, in words; "" when it may."""
    from changes.releases import shas_in_words

    if not change.pull.commits_listed:
        return f"{change.source_branch} brings more commits than can be listed: release them in parts"
    blocked = [s for s in contents if s.unapproved]
    if not blocked:
        return ""
    named = sorted({other.pk: other for s in blocked for other in s.unapproved}.values(), key=lambda o: o.pk)
    whose = ", ".join(f"{o.number} ({o.get_status_display().lower()})" for o in named)
    return (
        f"{len(blocked)} commit(s) belong to changes not approved on them: "
        f"{shas_in_words([s.sha for s in blocked])}, of {whose}"
    )


def released_together(contents: list[Shipped]) -> list[ChangeRequest]:
    """The other changes whose commits the release carries, by number."""
    return sorted({o.pk: o for s in contents for o in s.others}.values(), key=lambda o: o.pk)


def _contents_gate(change: ChangeRequest) -> dict[str, str]:
    """Every commit the release would ship belongs to a change approved on it."""
    contents = change_contents(change)
    assert contents is not None  # asked for only once the change's branch was read
    refusal = contents_refusal(change, contents)
    if refusal:
        return {"name": "Release contents", "state": "blocked", "detail": refusal}
    together = released_together(contents)
    detail = f"{len(contents)} commit(s)" + (
        f", released together with {', '.join(o.number for o in together)} (approved)"
        if together
        else ", all its own"
    )
    return {"name": "Release contents", "state": "ok", "detail": detail}


# What is said of a release ahead of live, on the change page and the catalogue.
AHEAD_SHOWS = [
    "id",
    "version",
    "merged_at",
    "change_id",
    "change__id",
    "change__status",
    "change__environment_id",
]


def ahead_of_live(environment_id: int | None = None) -> list[Release]:
    """The releases whose code is still on the environment's branch although they never stayed
    live: rolled back or failed after the merge, neither reverted nor fixed forward by a change
    that has since completed. The next release from that branch would ship them again. Without an
    environment, those of every environment. One plain query, the change page's on every view;
    a second one only when there are such releases, for the changes that fixed them forward."""
    where = {"change__environment_id": environment_id} if environment_id is not None else {}
    releases = list(
        Release.objects.filter(
            **where,
            merged_at__isnull=False,
            reverted_at__isnull=True,
            change__status__in=[ChangeStatus.ROLLED_BACK, ChangeStatus.FAILED],
        )
        .select_related("change")
        .only(*AHEAD_SHOWS)
        .order_by("merged_at")
    )
    if not releases:
        return releases
    fixed = set(
        ChangeRequest.objects.filter(
            fixes_forward_id__in=[r.change_id for r in releases], status=ChangeStatus.COMPLETED
        ).values_list("fixes_forward_id", flat=True)
    )
    return [r for r in releases if r.change_id not in fixed]


def _live_gate(change: ChangeRequest, ahead: list[Release]) -> dict[str, str]:
    """The environment's branch holds no rolled-back code, or this change fixes it forward."""
    unanswered = [r for r in ahead if r.change_id not in (change.fixes_forward_id, change.pk)]
    if not unanswered:
        return {"name": "Live version", "state": "ok", "detail": "no rolled-back code on the branch"}
    words = ", ".join(
        f"{r.change.number} ({r.change.get_status_display().lower()}) in {r.version}" for r in unanswered
    )
    return {
        "name": "Live version",
        "state": "blocked",
        "detail": f"{change.target_branch} is ahead of live by {words}: revert it, or name it on a change "
        "that fixes it forward",
    }


def _checks_gate(runs: list[CheckRun], required: list[str]) -> dict[str, str]:
    """The pull request's automated checks: all must pass, and every check the target branch
    requires must have reported."""
    from integrations.scm import Check, checks_in_words

    said = checks_in_words([Check(run.name, run.status, run.conclusion, run.url) for run in runs], required)
    if said:
        detail = said
    elif not runs:
        detail = "no check has reported on the pull request yet"
    else:
        detail = f"{len(runs)} check(s) passed"
    return {"name": "Automated checks", "state": "ok" if runs and not said else "blocked", "detail": detail}


def _review_gate(pull: PullRequest, target: str) -> dict[str, str]:
    """The pull request's review on GitHub: a code owner of the changed files approved it, nobody
    asks for changes, and it merges cleanly."""
    standing = pull.latest_reviews()
    asking = sorted(login for login, state in standing.items() if state == "CHANGES_REQUESTED")
    owners_approving = sorted(
        login for login, state in standing.items() if state == "APPROVED" and login in pull.owner_logins
    )
    owners = ", ".join(pull.owners)
    if pull.mergeable is False:
        detail, ok = f"#{pull.number} conflicts with {target}", False
    elif asking:
        detail, ok = f"changes requested by {', '.join('@' + a for a in asking)} on #{pull.number}", False
    elif not pull.owners:
        detail, ok = (
            f"#{pull.number}: CODEOWNERS names no owner of the {pull.changed_files} changed file(s)",
            True,
        )
    elif owners_approving:
        detail, ok = (
            f"#{pull.number} approved by code owner {', '.join('@' + o for o in owners_approving)}",
            True,
        )
    else:
        detail, ok = f"#{pull.number} waits for a code owner's approval ({owners})", False
    if pull.unresolved_teams:
        detail += f" (the members of {', '.join(pull.unresolved_teams)} could not be read)"
    return {"name": "Code review", "state": "ok" if ok else "blocked", "detail": detail}


def _review_unread_gate(pull: PullRequest | None, change: ChangeRequest) -> dict[str, str]:
    """The review gate of a change released on GitHub whose pull request is not known yet: it
    stays, blocked, and says why, rather than vanish."""
    if pull is not None and pull.error:
        detail = f"could not be read: {pull.error}"
    elif pull is not None and pull.read_at is not None:
        detail = f"no pull request of {change.source_branch} into {change.target_branch} yet"
    else:
        detail = "not read from GitHub yet"
    return {"name": "Code review", "state": "blocked", "detail": detail}


def _signed_gate(pull: PullRequest | None, source: str) -> dict[str, str]:
    """Every commit the release brings carries a verified signature."""
    from changes.releases import shas_in_words

    if pull is None or pull.read_at is None:
        detail, ok = "the repository has not been read yet", False
    elif pull.unsigned:
        detail, ok = (
            f"{len(pull.unsigned)} commit(s) on {source} not signed: {shas_in_words(pull.unsigned)}",
            False,
        )
    else:
        detail, ok = f"every commit on {source} is signed", True
    return {"name": "Signed commits", "state": "ok" if ok else "blocked", "detail": detail}


def code_owner_logins(change: ChangeRequest) -> set[str]:
    """Who owns the changed code: by CODEOWNERS, once the repository was read and names owners of
    the changed files; until then, the code owners of the change's services."""
    pull = pull_request_of(change)
    if pull is not None and pull.owner_logins:
        return set(pull.owner_logins)
    return {login.lower() for service in change.services.all() for login in service.code_owners}


def pending_approvers(change: ChangeRequest) -> list[User]:
    """Whom the quorum still waits for, never the requester or anyone who already decided:
    holders of missing sign-offs, the code owners while a code owner's approval is missing, and
    everyone who may approve while approvals are short."""
    from django.db.models import Q

    from portal.roles import MATRIX

    summary = change_quorum(change)
    approvers = [role for role, rights in MATRIX.items() if Right.CHANGE_APPROVE in rights]
    wanted = Q(pk__in=[])
    if summary.approvals < summary.required_approvals:
        wanted |= Q(role__in=approvers)
    if summary.missing_sign_offs:
        wanted |= Q(capacities__capacity__in=summary.missing_sign_offs)
    if summary.code_owner_approvals < summary.required_code_owner_approvals:
        for login in code_owner_logins(change):
            wanted |= Q(github_login__iexact=login)
    decided = [a.approver_id for a in change.approvals.all() if a.dismissed_at is None]
    people = (
        User.objects.filter(wanted, is_active=True, role__in=approvers)
        .exclude(pk=change.requester_id)
        .exclude(pk__in=decided)
        .distinct()
        .order_by("username")
    )
    return list(people)
