from django import forms

from portal.forms import OTPForm


class RollbackForm(OTPForm):
    reason = forms.CharField(
        max_length=2000, help_text="Why traffic goes back, for the record and the people told."
    )
    revert = forms.BooleanField(required=False, label="Also open the code revert in the repository")


class EndMonitoringForm(OTPForm):
    reason = forms.CharField(
        max_length=2000, help_text="Why the monitoring ends early: it goes in the report and the audit trail."
    )


def _environment_choices() -> list[tuple[str, str]]:
    from catalogue.models import Environment

    names = Environment.objects.values_list("name", "display_name")
    return [("", "All environments")] + [(name, shown or name) for name, shown in names]


def _service_choices() -> list[tuple[str, str]]:
    from catalogue.models import Service

    return [("", "All services")] + list(Service.objects.values_list("name", "name"))


class ReleaseFilterForm(forms.Form):
    """Which releases to show, by name, for the Releases page and its API."""

    environment = forms.ChoiceField(required=False)
    service = forms.ChoiceField(required=False, help_text="Releases of changes to this service.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read once, for both checking the filter and drawing it.
        self.fields["environment"].choices = _environment_choices()
        self.fields["service"].choices = _service_choices()
