from rest_framework import serializers

from integrations.deployers import validate_workflow
from integrations.scm import validate_git_ref
from portal.api.fields import CharField


class DeploySettingsSerializer(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        from deployments.models import DeploySettings

        model = DeploySettings
        exclude = ["id"]
        read_only_fields = ["environment", "live_colour"]
        extra_kwargs = {
            "github_workflow": {"validators": [validate_workflow]},
            "github_workflow_ref": {"validators": [validate_git_ref]},
            # Written, never read back: an edit that leaves it out keeps the one set.
            "deployer_secret": {"write_only": True, "required": False},
        }


class StageSerializer(serializers.ModelSerializer):
    class Meta:
        from deployments.models import Stage

        model = Stage
        fields = ["kind", "name", "weight", "state", "started_at", "ended_at", "checks", "message"]
        read_only_fields = fields


class DeploymentSerializer(serializers.ModelSerializer):
    change = serializers.SlugRelatedField(slug_field="number", read_only=True)
    environment = serializers.SlugRelatedField(slug_field="name", read_only=True)
    started_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    ended_early_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    weights = serializers.DictField(child=serializers.IntegerField(), read_only=True)
    stages = StageSerializer(many=True, read_only=True)
    paused = serializers.SerializerMethodField()

    class Meta:
        from deployments.models import Deployment

        model = Deployment
        fields = [
            "id",
            "change",
            "environment",
            "state",
            "version",
            "from_colour",
            "to_colour",
            "plan",
            "step",
            "weights",
            "desired_weight",
            "applied_weight",
            "bake_seconds",
            "analysis_seconds",
            "paused",
            "paused_at",
            "rollback_reason",
            "error",
            "started_by",
            "created_at",
            "state_since",
            "ended_at",
            "live_at",
            "monitor_until",
            "regression",
            "regressed_at",
            "ended_early_by",
            "ended_early_reason",
            "report",
            "stages",
        ]
        read_only_fields = fields

    def get_paused(self, deployment) -> bool:
        return deployment.paused_at is not None


class OtpSerializer(serializers.Serializer):
    otp = CharField(max_length=16)


class EndMonitoringSerializer(OtpSerializer):
    reason = CharField(max_length=2000, help_text="Why the monitoring ends early.")


class RollbackSerializer(OtpSerializer):
    reason = CharField(max_length=2000)
    revert = serializers.BooleanField(default=False, help_text="Also open the code revert in the repository.")


class ReleaseSerializer(serializers.ModelSerializer):
    """A deployment as the history of releases shows it: the version, the change and its services,
    who started it and when, when it went live, and what became of it (`outcome`: live,
    monitoring, superseded, rolling_back, rolled_back, stopped (rolled back before going live), failed
    (before going live), in_progress),
    with who rolled it back and why."""

    deployment = serializers.IntegerField(source="pk", read_only=True)
    change = serializers.SlugRelatedField(slug_field="number", read_only=True)
    change_title = serializers.CharField(source="change.title", read_only=True)
    services = serializers.SerializerMethodField()
    started_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    rollback_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    outcome = serializers.CharField(read_only=True)

    class Meta:
        from deployments.models import Deployment

        model = Deployment
        fields = [
            "deployment",
            "version",
            "change",
            "change_title",
            "services",
            "state",
            "outcome",
            "from_colour",
            "to_colour",
            "started_by",
            "created_at",
            "live_at",
            "ended_at",
            "rollback_by",
            "rollback_reason",
            "error",
        ]
        read_only_fields = fields

    def get_services(self, deployment) -> list[str]:
        return [service.name for service in deployment.change.services.all()]


class LiveReleaseSerializer(ReleaseSerializer):
    """The release live in an environment: on which colour, since when, whether it is still being
    monitored, and the version a rollback brings back while its colour is kept (else null)."""

    colour = serializers.CharField(source="to_colour", read_only=True)
    since = serializers.DateTimeField(source="live_at", read_only=True)
    monitoring = serializers.SerializerMethodField()
    rollback_to = serializers.SerializerMethodField()

    class Meta(ReleaseSerializer.Meta):
        fields = [*ReleaseSerializer.Meta.fields, "colour", "since", "monitoring", "rollback_to"]
        read_only_fields = fields

    def get_monitoring(self, deployment) -> bool:
        from deployments.models import Deployment

        return deployment.state == Deployment.State.MONITORING

    def get_rollback_to(self, deployment) -> dict | None:
        target = self.context["rollback_to"]
        return {"deployment": target.pk, "version": target.version} if target else None


class EnvironmentReleasesSerializer(serializers.Serializer):
    """GET /api/v1/environments/{name}/releases/: the live release and a page of the history."""

    environment = serializers.CharField()
    live = LiveReleaseSerializer(allow_null=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ReleaseSerializer(many=True)
