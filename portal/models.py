"""Users, the audit trail and outgoing notifications."""

import hashlib
import json
import re
import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email
from django.db import models


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a time zone name like Europe/Paris or UTC.")


class User(AbstractUser):
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="Times are shown to this person in this zone; they are stored in UTC.",
    )

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditImmutableError("Audit events are append-only: they cannot be updated.")

    def delete(self):
        raise AuditImmutableError("Audit events are append-only: they cannot be deleted.")


class AuditImmutableError(Exception):
    pass


class AuditEvent(models.Model):
    """One state change, who made it and from where; append-only and hash-chained.

    `hash` covers every field below and the hash of the event before, so editing, inserting or
    removing an event breaks the chain from there on (`manage.py audit verify` finds the first
    break). The actor is kept by id and name, not by a foreign key: deleting a user deletes no
    history. On PostgreSQL a trigger refuses UPDATE and DELETE as well.
    """

    created_at = models.DateTimeField(db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_repr or self.object_type} by {self.actor_name}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AuditImmutableError("Audit events are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditImmutableError("Audit events are append-only: they cannot be deleted.")

    HASHED_FIELDS = (
        "created_at",
        "actor_id",
        "actor_name",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "before",
        "after",
        "ip",
        "user_agent",
        "request_id",
    )

    def compute_hash(self) -> str:
        payload = {name: getattr(self, name) for name in self.HASHED_FIELDS}
        payload["created_at"] = self.created_at.isoformat()
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
        return hashlib.sha256(f"{self.prev_hash}|{canonical}".encode()).hexdigest()


class Notification(models.Model):
    """A message to send, kept so a retried task sends it once and a failure is visible."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        SLACK = "slack", "Slack"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        LOGGED = "logged", "Logged only"
        FAILED = "failed", "Failed"

    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(
        max_length=254, help_text="An e-mail address, or a Slack channel such as #incidents."
    )
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("send_test_notification", "Can send a test notification")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.recipient}: {self.subject}"

    @classmethod
    def recipient_error(cls, channel: str, recipient: str) -> str | None:
        """Why this recipient cannot receive on this channel, or None when it can."""
        if channel == cls.Channel.EMAIL:
            try:
                validate_email(recipient)
            except ValidationError:
                return "Enter an e-mail address such as ops@example.com."
        elif channel == cls.Channel.SLACK and not re.fullmatch(
            r"#[a-z0-9][a-z0-9._-]{0,79}|[CGU][A-Z0-9]{6,}", recipient
        ):
            return "Name a Slack channel such as #production-alerts, or a channel id."
        return None
