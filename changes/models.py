"""Change requests, their checklists, approvals and comments, the policy that governs them, and
when they may deploy: each environment's windows and freezes."""

import re

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from catalogue.choices import Phase
from catalogue.models import SIGN_OFF_CAPACITIES, validate_sign_offs
from changes.choices import ALLOWED_TRANSITIONS, ChangeStatus, ChangeType, Decision, Risk, VersionBump
from integrations.scm import PASSING_CONCLUSIONS, validate_git_ref
from portal.text import LONG_TEXT, SHORT_TEXT, SingleLineText


class StandardChangeTemplate(models.Model):
    """A pre-approved kind of change (a certificate renewal, a config flag): changes filed from it
    need only the approvals it names. Policy administrators keep them."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(max_length=LONG_TEXT, help_text="What a change of this kind does.")
    rollback_plan = models.TextField(max_length=LONG_TEXT)
    risk = models.CharField(max_length=8, choices=Risk.choices, default=Risk.LOW)
    risk_assessment = models.TextField(blank=True, max_length=LONG_TEXT)
    environment = models.ForeignKey(
        "catalogue.Environment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The environment its changes go to; empty: the person filing chooses.",
    )
    services = models.ManyToManyField("catalogue.Service", related_name="+", blank=True)
    min_approvals = models.PositiveSmallIntegerField(default=1)
    min_code_owner_approvals = models.PositiveSmallIntegerField(default=0)
    required_sign_offs = models.JSONField(default=list, blank=True, validators=[validate_sign_offs])
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ChangeRequestQuerySet(models.QuerySet["ChangeRequest"]):
    def open(self) -> "ChangeRequestQuerySet":
        return self.exclude(
            status__in=[
                ChangeStatus.COMPLETED,
                ChangeStatus.CANCELLED,
                ChangeStatus.FAILED,
                ChangeStatus.ROLLED_BACK,
            ]
        )


class ChangeRequest(models.Model):
    title = models.CharField(max_length=200, validators=[SingleLineText()])
    description = models.TextField(max_length=LONG_TEXT, help_text="What changes, and why.")
    rollback_plan = models.TextField(
        max_length=LONG_TEXT, help_text="How to go back if this goes wrong. Required."
    )
    change_type = models.CharField(max_length=16, choices=ChangeType.choices, default=ChangeType.NORMAL)
    risk = models.CharField(max_length=8, choices=Risk.choices, default=Risk.MEDIUM)
    risk_assessment = models.TextField(
        blank=True, max_length=LONG_TEXT, help_text="What could go wrong, and how likely."
    )
    environment = models.ForeignKey("catalogue.Environment", on_delete=models.PROTECT, related_name="changes")
    services = models.ManyToManyField("catalogue.Service", related_name="changes", blank=True)
    has_migrations = models.BooleanField(
        default=False, help_text="Carries database migrations (they must work with the running version)."
    )
    source_branch = models.CharField(
        max_length=100,
        default="staging",
        validators=[validate_git_ref],
        help_text="The branch released; it merges into the environment's branch.",
    )
    pull_request = models.CharField(max_length=200, blank=True, help_text="Pull request number or URL.")
    version_bump = models.CharField(max_length=8, choices=VersionBump.choices, default=VersionBump.MINOR)
    stakeholders = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="watched_changes", blank=True
    )
    stakeholder_channels = models.JSONField(
        default=list, blank=True, help_text="Slack channels, e.g. #releases."
    )
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="changes")
    status = models.CharField(max_length=20, choices=ChangeStatus.choices, default=ChangeStatus.DRAFT)
    # Bumped by every edit after submission; approvals given to an earlier revision are stale.
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_commit = models.CharField(
        max_length=64,
        blank=True,
        help_text="The commit the quorum approved: the release merges it and nothing else.",
    )
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    # The slot it is scheduled to deploy in (UTC); set while scheduled, kept through the deployment.
    scheduled_start = models.DateTimeField(null=True, blank=True)
    scheduled_end = models.DateTimeField(null=True, blank=True)
    # A standard change: the pre-approved template it was filed from (its approvals are the template's).
    standard_template = models.ForeignKey(
        StandardChangeTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="changes"
    )
    # Emergency changes: the incident they fix, the full review they owe, the freeze they went through.
    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.PROTECT, null=True, blank=True, related_name="changes"
    )
    review_due_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # A change that fixes forward the code of a rolled-back release still on the target branch.
    fixes_forward = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="fixed_forward_by",
        help_text="The rolled-back change whose code, still on the environment's branch, this one fixes.",
    )
    freeze_override = models.CharField(
        max_length=300,
        blank=True,
        help_text="The freeze an emergency change was scheduled through (an exception).",
    )

    objects = ChangeRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "-id"], name="change_status_idx"),
            models.Index(fields=["environment", "-id"], name="change_env_idx"),
            models.Index(fields=["requester", "-id"], name="change_requester_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("change-detail", args=[self.pk])

    @property
    def number(self) -> str:
        return f"CHG-{self.pk:06d}" if self.pk else "CHG-new"

    @property
    def target_branch(self) -> str:
        """Where the change merges: always its environment's branch, never a branch the requester
        names, so the checks, code owners and protection that judge it are that branch's."""
        return self.environment.branch

    @staticmethod
    def pk_from_number(number: str) -> int | None:
        digits = number.strip().upper().removeprefix("CHG-")
        return int(digits) if re.fullmatch(r"\d{1,18}", digits, re.ASCII) else None

    @property
    def review_pending(self) -> bool:
        """An emergency change approved up front whose full review is still owed."""
        return self.review_due_at is not None and self.reviewed_at is None

    @property
    def review_overdue(self) -> bool:
        from portal import clock

        return self.review_pending and clock.now() > self.review_due_at

    @property
    def standing_approver_ids(self) -> set[int]:
        """Who approved the change and still stands by it (not dismissed by an edit or replaced);
        read from the prefetched approvals when the page has them."""
        return {
            a.approver_id
            for a in self.approvals.all()
            if a.dismissed_at is None and a.decision == Decision.APPROVE
        }

    def can_transition_to(self, status: str) -> bool:
        return status in ALLOWED_TRANSITIONS[self.status]

    def transition_error(self, status: str) -> str:
        allowed = ", ".join(ChangeStatus(s).label.lower() for s in sorted(ALLOWED_TRANSITIONS[self.status]))
        return (
            f"{self.number} is {self.get_status_display().lower()}; it cannot become "
            f"{ChangeStatus(status).label.lower()} (it can become: {allowed or 'nothing, it is closed'})."
        )


class ChecklistItem(models.Model):
    """One item of a change's own copy of its policy's checklist."""

    change = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="checklist")
    position = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=63)
    text = models.CharField(max_length=300)
    phases = models.JSONField()
    integration = models.CharField(max_length=63, blank=True, help_text="What proves it, if not a person.")
    vouched_by = models.CharField(
        max_length=32,
        blank=True,
        choices=[(c.value, c.label) for c in SIGN_OFF_CAPACITIES],
        help_text="The sign-off capacity whose holder ticks it, if not anyone working on the change.",
    )
    done = models.BooleanField(default=False)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    evidence = models.TextField(blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["change", "key"], name="unique_checklist_key")]

    def __str__(self) -> str:
        return self.text

    def tick_refusal(self, user, change: ChangeRequest) -> str | None:
        """Why `user` may not tick or untick this person's item of `change`, or None when they may.

        A person's word is taken from those answerable for the change: its requester and those whose
        approval stands. An item that names the sign-off capacity vouching for it is ticked only by a
        holder of that capacity, never the requester (nobody vouches for their own security audit).
        The service refuses with this message and the page offers the tick only when it is None.
        """
        if self.vouched_by:
            if self.vouched_by in user.capacity_names() and user.pk != change.requester_id:
                return None
            who = self.get_vouched_by_display().lower()
            return f"“{self.text}” is vouched for by a holder of the {who}, other than the requester."
        if user.pk == change.requester_id or user.pk in change.standing_approver_ids:
            return None
        return (
            f"Only the requester or an approver of {change.number} ticks or unticks “{self.text}”; "
            "comment to ask them."
        )

    @property
    def gates_deploy(self) -> bool:
        from changes.integrations import PROVED_BY_DEPLOYMENT

        return (
            bool({Phase.PRE, Phase.BEFORE} & set(self.phases))
            and self.integration not in PROVED_BY_DEPLOYMENT
        )


class Approval(models.Model):
    """One person's decision on one revision of a change at one commit; dismissed when the change
    is edited or new commits arrive."""

    change = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    capacity = models.CharField(
        max_length=32,
        blank=True,
        choices=[(c.value, c.label) for c in SIGN_OFF_CAPACITIES],
        help_text="The sign-off this approval gives, if any.",
    )
    code_owner = models.BooleanField(default=False, help_text="The approver owned changed code at the time.")
    comment = models.TextField(blank=True, max_length=SHORT_TEXT)
    revision = models.PositiveIntegerField()
    commit = models.CharField(
        max_length=64,
        blank=True,
        help_text="The head commit the decision was given on; new commits dismiss it. Empty where no "
        "repository is configured.",
    )
    second_factor = models.CharField(
        max_length=120, blank=True, help_text="The second factor that confirmed it, in words."
    )
    created_at = models.DateTimeField()
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One person counts once: a single standing decision each, enforced by the database
            # so that two browsers racing cannot both land.
            models.UniqueConstraint(
                fields=["change", "approver"],
                condition=Q(dismissed_at__isnull=True),
                name="one_standing_decision",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver} {self.get_decision_display().lower()} {self.change.number}"


class Comment(models.Model):
    change = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    body = models.TextField(max_length=SHORT_TEXT)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.author} on {self.change.number}"


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class DeploymentWindow(models.Model):
    """When changes may deploy to an environment: these weekdays, from `start_time` to `end_time`
    on the environment's own clock (so a 02:00 window stays at 02:00 local across daylight saving)."""

    environment = models.ForeignKey("catalogue.Environment", on_delete=models.CASCADE, related_name="windows")
    weekdays = models.JSONField(help_text="Days of the week, 0 = Monday ... 6 = Sunday.")
    start_time = models.TimeField()
    end_time = models.TimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["environment", "start_time", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gt=models.F("start_time")), name="window_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        days = ", ".join(Weekday(d).label[:3] for d in sorted(self.weekdays))
        return f"{days} {self.start_time:%H:%M}-{self.end_time:%H:%M} ({self.environment.time_zone})"


class Freeze(models.Model):
    """A period when nothing deploys to an environment (a holiday, a launch); only an emergency
    change may go through, and that is reported as an exception."""

    environment = models.ForeignKey("catalogue.Environment", on_delete=models.CASCADE, related_name="freezes")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300, validators=[SingleLineText()])
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="freeze_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"Freeze of {self.environment}: {self.reason}"


COMMIT = RegexValidator(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$", "Give the full commit id (40 hex digits).")


class StagingRun(models.Model):
    """What happened to a commit in a staging environment, as CI says (with a CI token, or through
    GitHub's signed deployment events): it arrived (deployed), its tests passed (green) or failed
    (red). Stamped with the portal's time when it arrives, never a time the caller names."""

    class Result(models.TextChoices):
        DEPLOYED = "deployed", "Deployed"
        GREEN = "green", "Tests passed"
        RED = "red", "Tests failed"

    environment = models.ForeignKey(
        "catalogue.Environment", on_delete=models.CASCADE, related_name="staging_runs"
    )
    commit = models.CharField(max_length=64, validators=[COMMIT], help_text="The commit that ran.")
    version = models.CharField(max_length=100, help_text="What CI calls it (a build, a tag), for people.")
    result = models.CharField(max_length=8, choices=Result.choices)
    at = models.DateTimeField()
    url = models.URLField(blank=True, help_text="The CI run or deployment, for evidence.")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["environment", "version", "at"], name="staging_run_version_idx"),
            models.Index(fields=["commit", "at"], name="staging_run_commit_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.version or self.commit[:10]} {self.get_result_display().lower()} in {self.environment}"


class Release(models.Model):
    """A change's release in the repository, step by step: merged, tagged, its notes published.
    Each step is recorded as it is done, so a retry continues where a failure stopped and never
    merges or tags twice."""

    change = models.OneToOneField(ChangeRequest, on_delete=models.PROTECT, related_name="release")
    version = models.CharField(max_length=32, help_text="The tag, vMAJOR.MINOR.PATCH.")
    previous_tag = models.CharField(max_length=100, blank=True)
    head_commit = models.CharField(
        max_length=64,
        blank=True,
        help_text="The commit of the source branch the gates judged: the one merged, kept before the merge.",
    )
    pull_number = models.PositiveIntegerField(
        null=True, blank=True, help_text="The pull request that was read and is merged (GitHub)."
    )
    merge_commit = models.CharField(max_length=64, blank=True)
    merged_at = models.DateTimeField(null=True, blank=True)
    tagged_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    url = models.URLField(blank=True, help_text="The release on GitHub, when it is there.")
    reverted_commit = models.CharField(
        max_length=64,
        blank=True,
        help_text="The commit that undoes it (on GitHub, its revert pull request's).",
    )
    reverted_url = models.URLField(blank=True, help_text="The revert pull request, on GitHub.")
    reverted_at = models.DateTimeField(null=True, blank=True)
    shipped_with = models.ManyToManyField(
        ChangeRequest,
        blank=True,
        related_name="shipped_in",
        help_text="Other approved changes whose commits the release carries: released together.",
    )
    error = models.TextField(blank=True, help_text="Why the last attempt stopped, in words.")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.version} ({self.change.number})"

    @property
    def done(self) -> bool:
        return self.published_at is not None


class CheckRun(models.Model):
    """An automated check on the change's pull request, as GitHub last reported it."""

    FAILING = ("failure", "cancelled", "timed_out", "action_required", "startup_failure", "stale")

    change = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, help_text="queued, in_progress or completed")
    conclusion = models.CharField(max_length=20, blank=True, help_text="success, failure, ... once completed")
    head_sha = models.CharField(max_length=64, blank=True)
    url = models.URLField(blank=True, max_length=500)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["change", "name"], name="one_check_run_per_name")]

    def __str__(self) -> str:
        return f"{self.name}: {self.conclusion or self.status}"

    @property
    def passed(self) -> bool:
        return self.status == "completed" and self.conclusion in PASSING_CONCLUSIONS


class PullRequest(models.Model):
    """What the repository last said about releasing the change's source branch into its target:
    the pull request, its required checks and reviews, the code owners of the changed files and
    the commits that are not signed. Read by a task and kept up to date by GitHub's events."""

    change = models.OneToOneField(ChangeRequest, on_delete=models.CASCADE, related_name="pull")
    number = models.PositiveIntegerField(null=True, blank=True, help_text="None in a repository on disk.")
    url = models.URLField(blank=True, max_length=500)
    head_sha = models.CharField(max_length=64, blank=True)
    mergeable = models.BooleanField(null=True, help_text="None while the host works it out.")
    required_checks = models.JSONField(default=list, blank=True)
    reviews = models.JSONField(default=list, blank=True, help_text="Each reviewer's latest review.")
    changed_files = models.PositiveIntegerField(default=0)
    owners = models.JSONField(default=list, blank=True, help_text="CODEOWNERS entries of the changed files.")
    owner_logins = models.JSONField(default=list, blank=True, help_text="The people among them.")
    unresolved_teams = models.JSONField(
        default=list, blank=True, help_text="Teams among the owners whose members could not be read."
    )
    unsigned = models.JSONField(default=list, blank=True, help_text="Commits without a verified signature.")
    commits_listed = models.BooleanField(
        default=True, help_text="False when the branch brings more commits than the host lists."
    )
    carried_from = models.JSONField(
        default=list,
        blank=True,
        help_text="Earlier heads whose approvals still stand: the commits since only merged the target in "
        "(when the policy keeps approvals across such merges).",
    )
    read_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why the last reading failed, in words.")

    def __str__(self) -> str:
        return f"#{self.number}" if self.number else f"{self.change.source_branch} ({self.head_sha[:10]})"

    def latest_reviews(self) -> dict[str, str]:
        """Each reviewer's standing review: approved or changes requested (comments do not count).
        An approval given on an earlier head is stale, as GitHub's "dismiss stale approvals" has
        it: it stands only on the head (or on a head whose approvals were carried to it); a
        request for changes stands until it is answered."""
        standing: dict[str, str] = {}
        heads = {self.head_sha, *self.carried_from}
        for review in sorted(self.reviews, key=lambda r: r.get("submitted_at") or ""):
            if review["state"] == "APPROVED" and review.get("commit") not in heads:
                review = {**review, "state": "DISMISSED"}
            if review["state"] in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                standing[review["login"]] = review["state"]
        return {login: state for login, state in standing.items() if state != "DISMISSED"}


class PullCommit(models.Model):
    """A commit the change's branch would bring into its target, as last read: what its release
    ships. The same commit on several changes' branches is theirs together."""

    pull = models.ForeignKey(PullRequest, on_delete=models.CASCADE, related_name="commits")
    position = models.PositiveSmallIntegerField()
    sha = models.CharField(max_length=64, db_index=True)
    subject = models.CharField(max_length=200)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["pull", "sha"], name="one_pull_commit_per_sha")]

    def __str__(self) -> str:
        return f"{self.sha[:10]} {self.subject}"


def pull_request_of(change: ChangeRequest) -> PullRequest | None:
    """What the repository last said about the change's pull request, or None before it was read
    (Django keeps the answer on the change, found or not)."""
    try:
        return change.pull
    except PullRequest.DoesNotExist:
        return None


class CalendarFeed(models.Model):
    """A person's calendar-feed addresses: each carries the generation it was made in, and a new
    address (a new generation) makes every older one stop working."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    generation = models.PositiveIntegerField(default=0)
    renewed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Calendar feed of {self.user} (generation {self.generation})"
