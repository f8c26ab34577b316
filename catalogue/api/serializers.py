from rest_framework import serializers

from catalogue.models import ApprovalPolicy, Environment, Service


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
        fields = ["id", "name", "team", "repository", "environments", "code_owners", "on_status_page"]
