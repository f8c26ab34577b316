"""Users, the audit trail and outgoing notifications."""

import hashlib
import hmac
import json
import re
import zoneinfo
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import RegexValidator, validate_email
from django.db import models
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AbstractAuthToken

from portal import access_cache, clock, roles
from portal.roles import Capacity, Role


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a time zone name like Europe/Paris or UTC.")


class User(AbstractUser):
    """A person. Rights come from the role matrix in portal.roles, never from Django's permission
    tables or the superuser flag, so that administrators hold full rights only inside break-glass."""

    # What is worked out once per request (forget_rights drops it): the rights, the capacities.
    _greenlight_rights: frozenset[str]
    _greenlight_capacities: frozenset[str]

    role = models.CharField(max_length=32, choices=Role.choices, default=Role.DEVELOPER)
    github_login = models.CharField(
        max_length=39,
        blank=True,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$", "Enter a GitHub login such as octocat."
            )
        ],
        help_text="Matched against CODEOWNERS to decide who owns the changed files.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="Times are shown to this person in this zone; they are stored in UTC.",
    )
    oidc_subject = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        help_text="The identity provider's subject (`sub`) this person signs in as through single sign-on.",
    )

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    def capacity_names(self) -> frozenset[str]:
        cached = getattr(self, "_greenlight_capacities", None)
        if cached is None:
            if not self.pk:
                cached = frozenset()
            elif "capacities" in getattr(self, "_prefetched_objects_cache", {}):
                cached = frozenset(grant.capacity for grant in self.capacities.all())
            else:
                cached = access_cache.standing(self).capacities
            self._greenlight_capacities = cached
        return cached

    def break_glass_session(self) -> "BreakGlassSession | None":
        """The break-glass session open for this user now, if any (ended by the clock)."""
        if self.role != Role.ADMIN or not self.pk:
            return None
        return BreakGlassSession.objects.active().filter(user=self).first()

    def forget_rights(self) -> None:
        """Drops what was worked out for this request, after a grant or a break-glass change."""
        for name in ("_greenlight_rights", "_greenlight_capacities", "_greenlight_standing"):
            self.__dict__.pop(name, None)

    # Django's permission API, answered by the role matrix: templates' `perms` and views ask for
    # portal rights; the admin site asks for model permissions, which only break-glass opens
    # (roles.admin_may). The superuser flag grants nothing.
    def has_perm(self, perm, obj=None) -> bool:
        if perm in roles.Right.values:
            return roles.has_right(self, perm)
        return roles.admin_may(self, perm)

    def has_perms(self, perm_list, obj=None) -> bool:
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label) -> bool:
        return roles.admin_opens_to(self) or any(
            right.startswith(f"{app_label}.") for right in roles.rights_of(self)
        )


class UserCapacity(models.Model):
    """A capacity held besides the role: a sign-off capacity, or policy administration."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="capacities")
    capacity = models.CharField(max_length=32, choices=Capacity.choices)
    granted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    granted_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "capacity"], name="unique_user_capacity")]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_capacity_display()}"


class BreakGlassSessionQuerySet(models.QuerySet):
    def active(self):
        now = clock.now()
        return self.filter(opened_at__lte=now, expires_at__gt=now, closed_at__isnull=True)


class BreakGlassSession(models.Model):
    """An administrator's time-boxed emergency session: full rights, every act marked."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="break_glass_sessions")
    reason = models.TextField()
    opened_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    objects = BreakGlassSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"Break-glass #{self.pk} by {self.user} at {self.opened_at:%Y-%m-%d %H:%M} UTC"

    @property
    def ended_at(self):
        return self.closed_at or self.expires_at

    def is_active(self) -> bool:
        now = clock.now()
        return self.closed_at is None and self.opened_at <= now < self.expires_at


class ApiToken(AbstractAuthToken):
    """A token for CI: shown once, stored as a digest (django-rest-knox), with an expiry. Its scope
    says what it may call: only reads (read), everything its owner may (write), or only report
    staging runs (ci)."""

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Everything its owner may do"
        CI = "ci", "Report staging runs only (CI)"

    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.WRITE)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…) of {self.user}"

    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expiry is None or self.expiry > clock.now())


class SealedTOTPDevice(TOTPDevice):
    """django-otp's authenticator, its key sealed at rest with OTP_ENCRYPTION_KEY (portal.otp_keys):
    saved sealed, opened only in memory to check a code or draw the QR code. Greenlight reads and
    writes authenticators through this class; a key still unsealed (older rows), or sealed with a
    key OTP_ENCRYPTION_KEY replaced, opens as it is and is sealed with the current key at its next
    save (a code checked saves it)."""

    class Meta:
        proxy = True
        app_label = "portal"

    @property
    def bin_key(self) -> bytes:
        from portal import otp_keys

        return otp_keys.unseal(self.key)

    def save(self, *args: Any, **kwargs: Any) -> None:
        from portal import otp_keys

        if not otp_keys.sealed_with_current_key(self.key):
            self.key = otp_keys.reseal(self.key)
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "key"}
        super().save(*args, **kwargs)


class CodeFailures(models.Model):
    """A signed-in person's wrong codes (an act's code, through a verified session or a token),
    counted for the person alone and apart from sign-in failures: a stranger guessing passwords
    never locks these checks, and a code typed wrong behind a shared address never locks anyone
    else. Times are the portal clock's; the count starts afresh after a cool-off without failures."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="+")
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "code failures"

    def __str__(self) -> str:
        return f"{self.failures} wrong code(s) by {self.user}, last at {self.last_failure_at:%H:%M} UTC"


class AccessPolicy(models.Model):
    """The organisation's access settings; one row, edited by policy administrators."""

    break_glass_minutes = models.PositiveIntegerField(
        default=60, help_text="How long a break-glass session lasts before it ends by itself."
    )
    api_token_max_days = models.PositiveIntegerField(
        default=90, help_text="The longest lifetime an API token may be given."
    )
    announce_slack_channel = models.CharField(
        max_length=80, default="#production-alerts", help_text="Where break-glass sessions are announced."
    )
    announce_email = models.EmailField(
        blank=True, help_text="Who is e-mailed when a break-glass session opens."
    )

    class Meta:
        verbose_name_plural = "access policy"

    def __str__(self) -> str:
        return "Access policy"

    @classmethod
    def current(cls) -> "AccessPolicy":
        policy, _ = cls.objects.get_or_create(pk=1)
        return policy


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditImmutableError("Audit events are append-only: they cannot be updated.")

    def delete(self):
        raise AuditImmutableError("Audit events are append-only: they cannot be deleted.")


class AuditImmutableError(Exception):
    pass


class AuditEvent(models.Model):
    """One state change, who made it and from where; append-only and hash-chained.

    `hash` covers every field below and the hash of the event before, keyed (HMAC-SHA256) with the
    audit key named by `key_id`, which the database never holds (portal.chain): editing,
    inserting or removing an event breaks the chain from there on, and nobody without the key can
    recompute it. Removing the newest events, or all of them, is what the anchors written outside
    the database show (`manage.py audit verify` checks both). The actor is kept by id and name,
    not by a foreign key: deleting a user deletes no history. On PostgreSQL a trigger refuses
    UPDATE, DELETE and TRUNCATE as well.
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
    break_glass_session_id = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="Set when the act was made inside break-glass."
    )
    key_id = models.CharField(
        max_length=12, blank=True, help_text="Which audit key hashed the event (blank: an unkeyed hash)."
    )
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_repr or self.object_type} by {self.actor_name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AuditImmutableError("Audit events are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
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
        "break_glass_session_id",
        "key_id",
    )

    def compute_hash(self, key: str) -> str:
        """The event's hash under `key` (the key its key_id names). Events written before the
        chain was keyed have no key_id and a plain SHA-256, which verify accepts only before the
        first keyed event."""
        payload = {name: getattr(self, name) for name in self.HASHED_FIELDS}
        payload["created_at"] = self.created_at.isoformat()
        if not self.key_id:
            del payload["key_id"]
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
        message = f"{self.prev_hash}|{canonical}"
        if not self.key_id:
            return hashlib.sha256(message.encode()).hexdigest()
        return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


class AuditVerdict(models.Model):
    """One run of `audit verify`: how far it walked the chain, what it found, and the anchor it
    checked the chain against. The newest is what the audit page and /api/v1/audit/verify/ show;
    a run walks on from the last verified event, or from the first when `full`."""

    ran_at = models.DateTimeField(db_index=True)
    seconds = models.FloatField(help_text="How long the run took.")
    full = models.BooleanField(help_text="Walked from the first event (else from the last verified one).")
    ok = models.BooleanField()
    checked = models.PositiveBigIntegerField(help_text="Events whose hash this run recomputed.")
    total = models.PositiveBigIntegerField(help_text="Events in the chain when it ran.")
    head_id = models.BigIntegerField(null=True, blank=True, help_text="The newest event found sound.")
    head_hash = models.CharField(max_length=64, blank=True)
    first_bad_id = models.BigIntegerField(null=True, blank=True)
    problem = models.TextField(blank=True)
    anchor_event_id = models.BigIntegerField(null=True, blank=True)
    anchor_written_at = models.DateTimeField(null=True, blank=True)
    anchor_where = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        verdict = "intact" if self.ok else f"broken at event {self.first_bad_id}"
        return f"Audit chain {verdict} ({self.ran_at:%Y-%m-%d %H:%M} UTC)"


class Notification(models.Model):
    """A message to send, kept so a retried task sends it once and a failure is visible."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        SLACK = "slack", "Slack"
        PAGERDUTY = "pagerduty", "PagerDuty"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
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
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a worker last took it to send.")
    sent_at = models.DateTimeField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]

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


class InboundDelivery(models.Model):
    """A delivery an outside service sent to a webhook (GitHub by `X-GitHub-Delivery`, an SNS
    message by its MessageId, a PagerDuty event by its id), kept by its own id so a delivery sent
    twice is acted on once; with what it acted on, named as the audit names its objects."""

    class Source(models.TextChoices):
        GITHUB = "github", "GitHub"
        SNS = "sns", "AWS SNS"
        PAGERDUTY = "pagerduty", "PagerDuty"

    source = models.CharField(max_length=16, choices=Source.choices)
    delivery_id = models.CharField(max_length=200)
    received_at = models.DateTimeField()
    kind = models.CharField(max_length=100, blank=True, help_text="The delivery's type or event.")
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "delivery_id"], name="inbound_delivery_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.delivery_id}"

    def acted_on(self, target: models.Model | None) -> None:
        """Names what the delivery acted on (nothing: None)."""
        self.object_type = target._meta.label_lower if target is not None else ""
        self.object_id = str(target.pk) if target is not None else ""
        self.save(update_fields=["object_type", "object_id"])
