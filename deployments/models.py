"""Environments and the service catalogue that changes, incidents, the status page and metrics use."""

import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

SLUG = RegexValidator(r"^[a-z0-9][a-z0-9-]{0,62}$", "Use lowercase letters, digits and dashes.")
GITHUB_LOGIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?"


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a time zone name like Europe/Paris or UTC.")


def validate_github_logins(value) -> None:
    import re

    if not isinstance(value, list) or not all(
        isinstance(v, str) and re.fullmatch(GITHUB_LOGIN, v) for v in value
    ):
        raise ValidationError("List GitHub logins such as octocat.")


class Environment(models.Model):
    """Where changes land (staging, production), with the policy that governs them there."""

    name = models.CharField(max_length=63, unique=True, validators=[SLUG])
    display_name = models.CharField(max_length=100)
    branch = models.CharField(max_length=100, help_text="The branch this environment runs, e.g. main.")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    url = models.URLField(blank=True)
    is_production = models.BooleanField(default=False)
    approval_policy = models.ForeignKey(
        "changes.ApprovalPolicy", on_delete=models.PROTECT, related_name="environments"
    )
    # "Environment Details" of the process, shown on the environment page.
    aws_account = models.CharField(max_length=100, blank=True)
    database = models.CharField(max_length=200, blank=True)
    cache = models.CharField(max_length=200, blank=True)
    salesforce_org = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name or self.name


class Service(models.Model):
    """A deployable service: who owns it and where its code lives."""

    name = models.CharField(max_length=63, unique=True, validators=[SLUG])
    team = models.CharField(max_length=100)
    repository = models.CharField(max_length=200, help_text="owner/name on GitHub, or a local path.")
    environments = models.ManyToManyField(Environment, related_name="services", blank=True)
    code_owners = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_github_logins],
        help_text="GitHub logins who own this service's code, until CODEOWNERS is read from the repository.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
