from rest_framework import serializers

from deployments.models import Service
from incidents.models import Incident, Severity, TimelineEntry


class TimelineEntrySerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = TimelineEntry
        fields = ["id", "at", "kind", "actor", "text", "data"]
        read_only_fields = fields


class IncidentSerializer(serializers.ModelSerializer):
    """An incident as the API shows it: `number`, the links, the times, the timeline."""

    number = serializers.CharField(read_only=True)
    declared_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    commander = serializers.SlugRelatedField(slug_field="username", read_only=True)
    services = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    change = serializers.SlugRelatedField(slug_field="pk", read_only=True)
    timeline = TimelineEntrySerializer(many=True, read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id", "number", "title", "severity", "status", "source", "summary", "public", "declared_by",
            "commander", "services", "change", "deployment", "alarm", "started_at", "detected_at",
            "created_at", "acknowledged_at", "mitigated_at", "resolved_at", "timeline",
        ]  # fmt: skip
        read_only_fields = fields


class DeclareSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    severity = serializers.ChoiceField(choices=Severity.choices)
    summary = serializers.CharField(required=False, allow_blank=True, default="")
    services = serializers.SlugRelatedField(
        slug_field="name", many=True, queryset=Service.objects.all(), required=False, default=list
    )
    public = serializers.BooleanField(required=False, default=False)
    started_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class NoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=5000)


class StatusNoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
