"""Incidents: what broke, how badly, and who declared it. Emergency changes that fix one link here."""

from django.conf import settings
from django.db import models


class Severity(models.TextChoices):
    P0 = "P0", "P0 (critical: respond within 5 minutes)"
    P1 = "P1", "P1 (high: within 15 minutes)"
    P2 = "P2", "P2 (medium: within 1 hour)"
    P3 = "P3", "P3 (low: within 24 hours)"


class IncidentStatus(models.TextChoices):
    TRIGGERED = "triggered", "Triggered"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    MITIGATED = "mitigated", "Mitigated"
    RESOLVED = "resolved", "Resolved"


class Incident(models.Model):
    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=2, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.TRIGGERED)
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="Empty when the portal declared it (a rollback, an alarm).",
    )  # fmt: skip
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def number(self) -> str:
        return f"INC-{self.pk:06d}" if self.pk else "INC-new"
