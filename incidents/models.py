"""Incidents: what broke, how badly, who runs it, and everything that happened, in order (its
timeline). Declared by a person, by a deployment that rolled back by itself, or by an alarm;
emergency changes that fix one link here."""

from django.conf import settings
from django.db import models

from portal.text import LONG_TEXT, SHORT_TEXT, SingleLineText


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


# Where an incident may go from each status (PagerDuty's: a triggered one may be resolved at once).
ALLOWED_TRANSITIONS = {
    IncidentStatus.TRIGGERED: (
        IncidentStatus.ACKNOWLEDGED,
        IncidentStatus.MITIGATED,
        IncidentStatus.RESOLVED,
    ),
    IncidentStatus.ACKNOWLEDGED: (IncidentStatus.MITIGATED, IncidentStatus.RESOLVED),
    IncidentStatus.MITIGATED: (IncidentStatus.RESOLVED,),
    IncidentStatus.RESOLVED: (),
}


class Incident(models.Model):
    """An incident. Services lock its row FOR NO KEY UPDATE (`select_for_update(no_key=True)`): that
    serialises the acts on it, but lets another transaction add a row that points at it (a
    timeline entry, a link) meanwhile; a plain FOR UPDATE made such a transaction, holding the
    audit trail's lock, and an act on the incident, waiting for that lock, deadlock."""

    class Source(models.TextChoices):
        PERSON = "person", "Declared by a person"
        DEPLOYMENT = "deployment", "A deployment that rolled back by itself"
        ALARM = "alarm", "A CloudWatch alarm"

    title = models.CharField(max_length=200, validators=[SingleLineText()])
    severity = models.CharField(max_length=2, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.TRIGGERED)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.PERSON)
    summary = models.TextField(
        blank=True, max_length=SHORT_TEXT, help_text="What is known: the impact, what is being done."
    )
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the portal declared it (a rollback, an alarm).",
    )
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    responders = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="incidents_responding"
    )
    services = models.ManyToManyField("catalogue.Service", blank=True, related_name="incidents")
    change = models.ForeignKey(
        "changes.ChangeRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="incidents_caused",
        help_text="The change whose deployment it follows (an emergency change that fixes it links back).",
    )
    deployment = models.ForeignKey(
        "deployments.Deployment", on_delete=models.PROTECT, null=True, blank=True, related_name="incidents"
    )
    public = models.BooleanField(default=False, help_text="Shown on the public status page.")
    public_title = models.CharField(
        max_length=200,
        blank=True,
        help_text="What the status page calls it (its own title, which may name changes, stays internal).",
    )
    alarm = models.CharField(
        max_length=255, blank=True, help_text="The CloudWatch alarm that declared it (its name)."
    )
    started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the trouble began (from the alarm's own time; users' first requests to a failing "
        "release; a person's word). Empty: when it was detected.",
    )
    detected_at = models.DateTimeField(help_text="When the trouble was detected (the portal was told).")
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(
        default=0, help_text="How many times it escalated for want of an acknowledgement."
    )
    response_breached_at = models.DateTimeField(
        null=True, blank=True, help_text="When its response target passed unacknowledged."
    )
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def number(self) -> str:
        return f"INC-{self.pk:06d}" if self.pk else "INC-new"

    @property
    def dedup_key(self) -> str:
        """The key PagerDuty groups this incident's trigger, acknowledgement and resolution by."""
        return f"greenlight-{self.number.lower()}"

    @property
    def response_target(self):
        from incidents.defaults import RESPONSE_TARGETS

        return RESPONSE_TARGETS[self.severity]

    def can_transition_to(self, status: str) -> bool:
        return status in ALLOWED_TRANSITIONS[self.status]

    def transition_error(self, status: str) -> str:
        return (
            f"{self.number} is {self.get_status_display().lower()}: it cannot be "
            f"{IncidentStatus(status).label.lower()} now."
        )


class TimelineEntry(models.Model):
    """Something that happened to an incident: a status change, a page, a rollback, a note, a link,
    who and when. Written by the incident services only, in the same transaction as the act."""

    class Kind(models.TextChoices):
        DECLARED = "declared", "Declared"
        STATUS = "status", "Status"
        PAGE = "page", "Page"
        ROLLBACK = "rollback", "Rollback"
        NOTE = "note", "Note"
        LINK = "link", "Link"
        ESCALATION = "escalation", "Escalation"
        ALARM = "alarm", "Alarm"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    text = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    public = models.BooleanField(
        default=False, help_text="An update the public status page shows (of a public incident)."
    )

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "timeline entries"

    def __str__(self) -> str:
        return f"{self.incident.number} {self.kind}: {self.text[:60]}"


class PostMortem(models.Model):
    """What an incident taught: required for every P0 and P1 and every incident that needed a
    rollback, due 48 hours after resolution; its timeline is filled from the incident's."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="postmortem")
    due_at = models.DateTimeField()
    summary = models.TextField(blank=True, max_length=LONG_TEXT)
    impact = models.TextField(blank=True, max_length=LONG_TEXT)
    timeline = models.TextField(blank=True, help_text="Filled from the incident's timeline; edit freely.")
    root_cause = models.TextField(blank=True, max_length=LONG_TEXT)
    went_well = models.TextField(blank=True, max_length=LONG_TEXT)
    went_badly = models.TextField(blank=True, max_length=LONG_TEXT)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was last said to be overdue."
    )

    # What a finished post-mortem has written (the timeline is filled in already).
    REQUIRED = ("summary", "impact", "root_cause")

    def __str__(self) -> str:
        return f"Post-mortem of {self.incident.number}"

    def overdue(self, now) -> bool:
        return self.completed_at is None and now > self.due_at


class ActionItem(models.Model):
    """What a post-mortem resolves to do so it does not happen again: an owner, a due date, a state;
    reminded when overdue."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        DROPPED = "dropped", "Dropped"

    postmortem = models.ForeignKey(PostMortem, on_delete=models.CASCADE, related_name="action_items")
    title = models.CharField(max_length=300, validators=[SingleLineText()])
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    due_on = models.DateField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True, help_text="When its owner was last reminded.")

    class Meta:
        ordering = ["due_on", "id"]

    def __str__(self) -> str:
        return self.title

    def overdue(self, today) -> bool:
        return self.state == self.State.OPEN and today > self.due_on


class StatusSubscriber(models.Model):
    """Someone who asked for the public status page's updates by e-mail: confirmed through a link
    sent to the address, and gone again through the link in every update."""

    email = models.EmailField(unique=True)
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.email
