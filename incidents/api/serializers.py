from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalogue.models import Service
from deployments.models import Deployment
from incidents.measures import incident_measures
from incidents.models import ActionItem, Incident, PostMortem, Severity, TimelineEntry
from incidents.services import POSTMORTEM_FIELDS
from portal import clock
from portal.api.fields import CharField, DateTimeField, TextOnly
from portal.text import LONG_TEXT, SHORT_TEXT, SingleLineText, TextLimit


class TimelineEntrySerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = TimelineEntry
        fields = ["id", "at", "kind", "actor", "text", "data"]
        read_only_fields = fields


class IncidentMeasuresSerializer(serializers.Serializer):
    """An incident's TTD, TTA and TTR in seconds (incidents.measures): `*_met` is null without a
    target, or while the figure runs (to now) within it."""

    ttd_seconds = serializers.IntegerField(source="ttd.seconds")
    tta_seconds = serializers.IntegerField(source="tta.seconds")
    ttr_seconds = serializers.IntegerField(source="ttr.seconds")
    ttd_met = serializers.BooleanField(source="ttd.met", allow_null=True)
    tta_met = serializers.BooleanField(source="tta.met", allow_null=True)
    ttr_met = serializers.BooleanField(source="ttr.met", allow_null=True)
    tta_running = serializers.BooleanField(source="tta.running")
    ttr_running = serializers.BooleanField(source="ttr.running")


class IncidentSerializer(serializers.ModelSerializer):
    """An incident as the API shows it: `number`, the links, the times, the timeline."""

    number = serializers.CharField(read_only=True)
    declared_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    commander = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    responders = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    services = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    change = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    timeline = TimelineEntrySerializer(many=True, read_only=True)
    measures = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id",
            "number",
            "title",
            "severity",
            "status",
            "source",
            "summary",
            "public",
            "public_title",
            "declared_by",
            "commander",
            "responders",
            "services",
            "change",
            "deployment",
            "alarm",
            "started_at",
            "detected_at",
            "created_at",
            "acknowledged_at",
            "mitigated_at",
            "resolved_at",
            "measures",
            "timeline",
        ]
        read_only_fields = fields

    @extend_schema_field(IncidentMeasuresSerializer)
    def get_measures(self, incident: Incident) -> dict:
        return IncidentMeasuresSerializer(incident_measures(incident, clock.now())).data


class DeclareSerializer(serializers.Serializer):
    title = CharField(max_length=200, validators=[SingleLineText()])
    severity = serializers.ChoiceField(choices=Severity.choices)
    summary = CharField(required=False, allow_blank=True, default="", max_length=SHORT_TEXT)
    services = serializers.SlugRelatedField(
        slug_field="name", many=True, queryset=Service.objects.all(), required=False, default=list
    )
    public = serializers.BooleanField(required=False, default=False)
    public_title = serializers.CharField(
        max_length=200,
        validators=[SingleLineText()],
        required=False,
        allow_blank=True,
        default="",
        help_text="What the status page calls it: needed with `public`.",
    )
    deployment = serializers.PrimaryKeyRelatedField(
        queryset=Deployment.objects.all(), required=False, allow_null=True, default=None
    )
    started_at = DateTimeField(required=False, allow_null=True, default=None)


class PublishSerializer(serializers.Serializer):
    public = serializers.BooleanField(help_text="On the public status page, or off it.")
    public_title = serializers.CharField(
        max_length=200,
        validators=[SingleLineText()],
        required=False,
        allow_blank=True,
        default="",
        help_text="What the status page calls it (needed to publish, unless one was given before); "
        "the incident's own title stays internal.",
    )


class NoteSerializer(serializers.Serializer):
    text = CharField(max_length=SHORT_TEXT)
    public = serializers.BooleanField(
        required=False, default=False, help_text="An update on the status page too (a public incident)."
    )


class StatusNoteSerializer(serializers.Serializer):
    note = CharField(required=False, allow_blank=True, default="", max_length=2000)


class ActionItemSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ActionItem
        fields = ["id", "title", "owner", "due_on", "state", "created_at", "closed_at"]
        read_only_fields = fields


class PostMortemSerializer(TextOnly, serializers.ModelSerializer):
    """The post-mortem; PATCH writes any of its parts, `complete: true` finishes it (once its
    summary, impact and root cause are written)."""

    incident = serializers.CharField(source="incident.number", read_only=True)
    author = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    action_items = ActionItemSerializer(many=True, read_only=True)
    complete = serializers.BooleanField(write_only=True, required=False, default=False)

    class Meta:
        model = PostMortem
        fields = [
            "incident",
            "due_at",
            "summary",
            "impact",
            "timeline",
            "root_cause",
            "went_well",
            "went_badly",
            "author",
            "completed_at",
            "action_items",
            "complete",
        ]
        read_only_fields = ["incident", "due_at", "author", "completed_at", "action_items"]
        extra_kwargs = {
            name: {"required": False, "allow_blank": True, "max_length": LONG_TEXT}
            for name in POSTMORTEM_FIELDS
            if name != "timeline"
        } | {
            # Filled in from the incident's timeline, which may run longer; what a person writes
            # is held to the same limit as the other parts.
            "timeline": {"required": False, "allow_blank": True, "validators": [TextLimit(LONG_TEXT)]},
        }


class ActionItemCreateSerializer(serializers.Serializer):
    title = CharField(max_length=300, validators=[SingleLineText()])
    owner = serializers.SlugRelatedField(slug_field="username", queryset=get_user_model().objects.all())
    due_on = serializers.DateField()


class ActionItemStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=ActionItem.State.choices)
