from rest_framework import serializers

from changes.models import ApprovalPolicy
from deployments.models import Environment, Service


class EnvironmentSerializer(serializers.ModelSerializer):
    approval_policy = serializers.SlugRelatedField(slug_field="name", queryset=ApprovalPolicy.objects.all())

    class Meta:
        model = Environment
        fields = [
            "id",
            "name",
            "display_name",
            "branch",
            "time_zone",
            "url",
            "is_production",
            "approval_policy",
            "aws_account",
            "database",
            "database_replica",
            "cache",
            "salesforce_org",
        ]


class ServiceSerializer(serializers.ModelSerializer):
    environments = serializers.SlugRelatedField(
        slug_field="name", many=True, queryset=Environment.objects.all(), required=False
    )

    class Meta:
        model = Service
        fields = ["id", "name", "team", "repository", "environments", "code_owners"]


class DeploySettingsSerializer(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        from deployments.models import DeploySettings

        model = DeploySettings
        exclude = ["id"]
        read_only_fields = ["environment", "live_colour"]


class StageSerializer(serializers.ModelSerializer):
    class Meta:
        from deployments.models import Stage

        model = Stage
        fields = ["kind", "name", "weight", "state", "started_at", "ended_at", "checks", "message"]
        read_only_fields = fields


class DeploymentSerializer(serializers.ModelSerializer):
    change = serializers.SlugRelatedField(slug_field="number", read_only=True)
    environment = serializers.SlugRelatedField(slug_field="name", read_only=True)
    started_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    weights = serializers.DictField(child=serializers.IntegerField(), read_only=True)
    stages = StageSerializer(many=True, read_only=True)
    paused = serializers.SerializerMethodField()

    class Meta:
        from deployments.models import Deployment

        model = Deployment
        fields = [
            "id", "change", "environment", "state", "version", "from_colour", "to_colour", "plan", "step",
            "weights", "desired_weight", "applied_weight", "bake_seconds", "analysis_seconds", "paused",
            "paused_at", "rollback_reason", "error", "started_by", "created_at", "state_since", "ended_at",
            "stages",
        ]  # fmt: skip
        read_only_fields = fields

    def get_paused(self, deployment) -> bool:
        return deployment.paused_at is not None


class OtpSerializer(serializers.Serializer):
    otp = serializers.CharField(max_length=16)


class RollbackSerializer(OtpSerializer):
    reason = serializers.CharField(max_length=2000)
    revert = serializers.BooleanField(default=False, help_text="Also open the code revert in the repository.")
