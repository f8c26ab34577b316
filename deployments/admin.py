from django import forms
from django.contrib import admin
from django.db import models

from deployments import services
from deployments.models import Deployment, DeploySettings
from integrations.deployers import validate_workflow
from integrations.scm import validate_git_ref
from portal.admin import ReadOnlyAdmin


def _https(field, **kwargs):
    """Addresses typed without a scheme are https ones."""
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class DeploySettingsForm(forms.ModelForm):
    class Meta:
        model = DeploySettings
        formfield_callback = _https
        # Not the live colour: the engine sets it as deployments end.
        fields = [f.name for f in DeploySettings._meta.fields if f.name not in ("id", "live_colour")]
        # The webhook deployer's secret is written, never shown.
        widgets = {"deployer_secret": forms.PasswordInput(render_value=False)}

    def clean_deployer_secret(self):
        """Left empty, the secret set before is kept."""
        return self.cleaned_data["deployer_secret"] or self.instance.deployer_secret

    def clean_github_workflow(self):
        validate_workflow(self.cleaned_data["github_workflow"])
        return self.cleaned_data["github_workflow"]

    def clean_github_workflow_ref(self):
        validate_git_ref(self.cleaned_data["github_workflow_ref"])
        return self.cleaned_data["github_workflow_ref"]

    def clean(self):
        cleaned = super().clean()
        environment = cleaned.get("environment") or getattr(self.instance, "environment", None)
        if environment and Deployment.running_in(environment.pk):
            raise forms.ValidationError(f"{environment} is being deployed to: change its settings after.")
        return cleaned


@admin.register(DeploySettings)
class DeploySettingsAdmin(admin.ModelAdmin):
    """Saved through the service, so the change is audited like one made through the API."""

    form = DeploySettingsForm
    list_display = ["environment", "live_colour", "strategy", "deployer", "telemetry"]

    def has_delete_permission(self, request, obj=None):
        return False  # an environment keeps how it is deployed to; edit the settings instead

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.URLField):
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        fields = {name: value for name, value in form.cleaned_data.items() if name != "environment"}
        saved = services.deploy_settings_save(
            actor=request.user, environment=form.cleaned_data["environment"], **fields
        )
        obj.pk = saved.pk


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "change",
        "environment",
        "state",
        "version",
        "applied_weight",
        "created_at",
        "ended_at",
    ]
    list_filter = ["state", "environment"]
