"""The catalogue the apps above share: environments (where changes land), services (what is
deployed, who owns its code) and the approval policies that govern an environment's changes."""

import re
import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from catalogue import defaults
from catalogue.choices import Phase
from integrations.scm import validate_git_ref
from portal.roles import Capacity
from portal.text import SingleLineText

SLUG = RegexValidator(r"^[a-z0-9][a-z0-9-]{0,62}$", "Use lowercase letters, digits and dashes.")
GITHUB_LOGIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?"


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a time zone name like Europe/Paris or UTC.")


def validate_github_logins(value) -> None:
    if not isinstance(value, list) or not all(
        isinstance(v, str) and re.fullmatch(GITHUB_LOGIN, v) for v in value
    ):
        raise ValidationError("List GitHub logins such as octocat.")


SIGN_OFF_CAPACITIES = [Capacity.SECURITY, Capacity.PRODUCT, Capacity.ENGINEERING_LEAD]


def validate_sign_offs(value) -> None:
    if not isinstance(value, list) or not set(value) <= set(SIGN_OFF_CAPACITIES):
        raise ValidationError(f"List sign-off capacities among {', '.join(SIGN_OFF_CAPACITIES)}.")


def validate_checklist(value) -> None:
    phases = set(Phase.values)
    if not isinstance(value, list):
        raise ValidationError("The checklist is a list of items.")
    keys = set()
    for item in value:
        if not isinstance(item, dict) or not item.get("key") or not item.get("text"):
            raise ValidationError("Each checklist item has a key and a text.")
        if not item.get("phases") or not set(item["phases"]) <= phases:
            raise ValidationError(f"Item {item['key']!r}: phases are among {', '.join(sorted(phases))}.")
        if item.get("vouched_by", "") not in ("", *SIGN_OFF_CAPACITIES):
            raise ValidationError(
                f"Item {item['key']!r}: vouched_by is one of {', '.join(SIGN_OFF_CAPACITIES)}."
            )
        if item["key"] in keys:
            raise ValidationError(f"Item {item['key']!r} appears twice: keep it once with both phases.")
        keys.add(item["key"])


class ApprovalPolicy(models.Model):
    """How many approvals and which sign-offs an environment's changes need, and their checklist."""

    name = models.CharField(max_length=100, unique=True, validators=[SingleLineText()])
    min_approvals = models.PositiveSmallIntegerField(default=defaults.APPROVALS)
    min_code_owner_approvals = models.PositiveSmallIntegerField(default=defaults.CODE_OWNER_APPROVALS)
    required_sign_offs = models.JSONField(
        default=defaults.sign_offs, blank=True, validators=[validate_sign_offs]
    )
    checks_must_pass = models.BooleanField(default=True, help_text="All automated checks pass before deploy.")
    signed_commits_required = models.BooleanField(
        default=True, help_text="Every commit released carries a verified signature."
    )
    reminder_after_hours = models.PositiveSmallIntegerField(default=defaults.REMINDER_AFTER_HOURS)
    # Emergency changes: fewer approvals up front, from these roles; the full review is owed after.
    emergency_min_approvals = models.PositiveSmallIntegerField(default=defaults.EMERGENCY_APPROVALS)
    emergency_approver_roles = models.JSONField(default=defaults.emergency_approver_roles)
    emergency_review_hours = models.PositiveSmallIntegerField(default=defaults.EMERGENCY_REVIEW_HOURS)
    emergency_min_severity = models.CharField(
        max_length=2,
        choices=[(s, s) for s in defaults.SEVERITIES],
        default=defaults.EMERGENCY_MIN_SEVERITY,
        help_text="An emergency change fixes an open incident of this severity or worse (P0 is the worst).",
    )
    keep_approvals_on_target_merge = models.BooleanField(
        default=defaults.KEEP_APPROVALS_ON_TARGET_MERGE,
        help_text="Keep approvals across new commits that only merge the target branch in (as GitHub may); "
        "otherwise any new commit dismisses them.",
    )
    soak_hours = models.PositiveSmallIntegerField(
        default=defaults.SOAK_HOURS, help_text="How long the version must stay green in staging first."
    )
    checklist = models.JSONField(default=defaults.checklist, validators=[validate_checklist])

    class Meta:
        verbose_name_plural = "approval policies"

    def __str__(self) -> str:
        return self.name

    @property
    def sign_off_labels(self) -> list[str]:
        return [Capacity(c).label.replace(" sign-off", "").lower() for c in self.required_sign_offs]


class Environment(models.Model):
    """Where changes land (staging, production), with the policy that governs them there."""

    name = models.CharField(max_length=63, unique=True, validators=[SLUG])
    display_name = models.CharField(max_length=100, validators=[SingleLineText()])
    branch = models.CharField(
        max_length=100,
        validators=[validate_git_ref],
        help_text="The branch this environment runs, e.g. main.",
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    url = models.URLField(blank=True)
    is_production = models.BooleanField(default=False)
    approval_policy = models.ForeignKey(ApprovalPolicy, on_delete=models.PROTECT, related_name="environments")
    # "Environment Details" of the process, shown on the environment page.
    aws_account = models.CharField(max_length=100, blank=True)
    database = models.CharField(max_length=200, blank=True)
    database_replica = models.CharField(max_length=200, blank=True)
    cache = models.CharField(max_length=200, blank=True)
    salesforce_org = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name or self.name


class Service(models.Model):
    """A deployable service: who owns it and where its code lives."""

    name = models.CharField(max_length=63, unique=True, validators=[SLUG])
    team = models.CharField(max_length=100, validators=[SingleLineText()])
    repository = models.CharField(
        max_length=200, validators=[SingleLineText()], help_text="owner/name on GitHub, or a local path."
    )
    environments = models.ManyToManyField(Environment, related_name="services", blank=True)
    code_owners = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_github_logins],
        help_text="GitHub logins who own this service's code, until CODEOWNERS is read from the repository.",
    )
    on_status_page = models.BooleanField(default=False, help_text="Shown on the public status page.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
