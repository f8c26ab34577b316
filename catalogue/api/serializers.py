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
        extra_kwargs = {
            name: {"help_text": "Empty unless the caller may read deployment settings."}
            for name in ("aws_account", "database", "database_replica", "cache", "salesforce_org")
        }

    # What the environments page shows only to those who may read deployment settings.
    SETTINGS = ("aws_account", "database", "database_replica", "cache", "salesforce_org")

    def to_representation(self, environment):
        from portal.roles import Right, has_right

        shown = super().to_representation(environment)
        request = self.context.get("request")
        if request is None or not has_right(request.user, Right.ENVIRONMENT_VIEW_SETTINGS):
            shown.update(dict.fromkeys(self.SETTINGS, ""))
        return shown


class ServiceSerializer(serializers.ModelSerializer):
    environments = serializers.SlugRelatedField(
        slug_field="name", many=True, queryset=Environment.objects.all(), required=False
    )

    class Meta:
        model = Service
        fields = ["id", "name", "team", "repository", "environments", "code_owners", "on_status_page"]
