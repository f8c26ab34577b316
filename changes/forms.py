from django import forms

from catalogue.models import SIGN_OFF_CAPACITIES
from changes.choices import ChangeStatus, ChangeType, Decision
from changes.models import ChangeRequest
from portal.forms import OTPForm


class ChangeRequestForm(forms.ModelForm):
    stakeholder_channels = forms.CharField(
        required=False,
        help_text="Slack channels to tell, separated by commas: #releases, #studio",
    )

    class Meta:
        model = ChangeRequest
        fields = [
            "title",
            "standard_template",
            "environment",
            "services",
            "change_type",
            "incident",
            "risk",
            "risk_assessment",
            "description",
            "rollback_plan",
            "has_migrations",
            "source_branch",
            "fixes_forward",
            "pull_request",
            "version_bump",
            "stakeholders",
            "stakeholder_channels",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 5}),
            "rollback_plan": forms.Textarea(attrs={"rows": 4}),
            "risk_assessment": forms.Textarea(attrs={"rows": 2}),
            "services": forms.SelectMultiple(attrs={"size": 4}),
            "stakeholders": forms.SelectMultiple(attrs={"size": 4}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source_branch"].help_text = (
            "The branch that carries the change. It merges into its environment's branch, which "
            "is not chosen here."
        )
        self.fields["fixes_forward"].queryset = ChangeRequest.objects.filter(
            status__in=[ChangeStatus.ROLLED_BACK, ChangeStatus.FAILED], release__merged_at__isnull=False
        )
        self.fields["fixes_forward"].label = "Fixes forward"
        if self.instance.pk:
            self.initial["stakeholder_channels"] = ", ".join(self.instance.stakeholder_channels)
            del self.fields["standard_template"]  # a change is filed from a template once
        else:
            from changes.models import StandardChangeTemplate

            self.fields["standard_template"].queryset = StandardChangeTemplate.objects.filter(active=True)
            self.fields["standard_template"].label = "Standard change template"

    @staticmethod
    def initial_from(template) -> dict:
        """What a change filed from a standard template starts with."""
        fields = ("description", "rollback_plan", "risk", "risk_assessment")
        return {
            "standard_template": template.pk,
            "change_type": "standard",
            **{name: getattr(template, name) for name in fields},
            **({"environment": template.environment_id} if template.environment_id else {}),
            "services": [service.pk for service in template.services.all()],
        }

    @staticmethod
    def initial_from_query(query) -> dict:
        """What a link may fill in on a new change (the Releases page's "new change for v1.2.0", an
        incident's "emergency change"): the title and description as written, the type, the
        incident by id, the environment and services by name (what matches nothing is left out).
        Nothing is saved until the person files it."""
        from catalogue.models import Environment, Service

        initial = {name: query[name] for name in ("title", "description") if query.get(name)}
        if query.get("change_type") in ChangeType.values:
            initial["change_type"] = query["change_type"]
        incidents = ChangeRequestForm.base_fields["incident"].queryset  # the incidents a change may name
        if query.get("incident", "").isdigit() and incidents.filter(pk=query["incident"]).exists():
            initial["incident"] = int(query["incident"])
        if query.get("fixes_forward", "").isdigit():
            initial["fixes_forward"] = int(query["fixes_forward"])
        if query.get("environment"):
            environment = Environment.objects.filter(name=query["environment"]).first()
            if environment is not None:
                initial["environment"] = environment.pk
        if query.getlist("services"):
            names = query.getlist("services")
            initial["services"] = list(Service.objects.filter(name__in=names).values_list("pk", flat=True))
        return initial

    def clean_stakeholder_channels(self):
        import re

        channels = [c.strip() for c in self.cleaned_data["stakeholder_channels"].split(",") if c.strip()]
        bad = [c for c in channels if not re.fullmatch(r"#[a-z0-9][a-z0-9._-]{0,79}", c)]
        if bad:
            raise forms.ValidationError(f"{', '.join(bad)}: name Slack channels like #releases.")
        return channels

    def clean_rollback_plan(self):
        plan = self.cleaned_data["rollback_plan"].strip()
        if not plan:
            raise forms.ValidationError("Write the rollback plan: how to go back if this goes wrong.")
        return plan


class DecisionForm(OTPForm):
    decision = forms.ChoiceField(choices=Decision.choices, widget=forms.RadioSelect, initial=Decision.APPROVE)
    capacity = forms.ChoiceField(required=False, label="Sign off as")
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    field_order = ["decision", "capacity", "comment", "otp"]

    def __init__(self, *args, capacities=(), **kwargs):
        super().__init__(*args, **kwargs)
        held = [c for c in SIGN_OFF_CAPACITIES if c in capacities]
        self.fields["capacity"].choices = [("", "No sign-off, an approval")] + [
            (c.value, c.label) for c in held
        ]
        if not held:
            self.fields["capacity"].widget = forms.HiddenInput()


class ChecklistTickForm(forms.Form):
    done = forms.BooleanField(required=False)
    evidence = forms.CharField(required=False, max_length=2000)


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment", widget=forms.Textarea(attrs={"rows": 3}), help_text="@username tells them."
    )
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput())


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=2000)


class MomentField(forms.DateTimeField):
    """A date and time read on the viewer's clock (the calendar is drawn in it), refused where
    that clock skips or repeats it."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def __init__(self, *args, zone=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone

    def to_python(self, value):
        from datetime import datetime

        from django.utils.dateparse import parse_datetime

        from changes.calendar import TimeRefused, local_moment

        if value in self.empty_values:
            return None
        try:
            moment = value if isinstance(value, datetime) else parse_datetime(str(value).strip())
        except ValueError:  # well formed, but no such date
            moment = None
        if moment is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            return local_moment(moment, self.zone)
        except TimeRefused as refused:
            raise forms.ValidationError(str(refused)) from None


class ScheduleForm(forms.Form):
    change = forms.ModelChoiceField(queryset=ChangeRequest.objects.none(), label="Change")
    start = MomentField(label="From")
    end = MomentField(label="Until")

    def __init__(self, *args, environment, zone, **kwargs):
        super().__init__(*args, **kwargs)
        from changes.choices import ChangeStatus

        self.fields["change"].queryset = ChangeRequest.objects.filter(
            environment=environment, status__in=[ChangeStatus.APPROVED, ChangeStatus.SCHEDULED]
        ).only("id", "title")
        self.fields["change"].label_from_instance = lambda change: f"{change.number} {change.title}"
        for name in ("start", "end"):
            self.fields[name].zone = zone
            self.fields[name].help_text = f"Your time ({zone.key})."


class FreezeForm(OTPForm):
    """A freeze stops every deploy but an emergency one, so it takes a current code, as the API does."""

    starts_at = MomentField(label="Frozen from")
    ends_at = MomentField(label="Until")
    reason = forms.CharField(max_length=300, help_text="A holiday, a launch...")
    field_order = ["starts_at", "ends_at", "reason", "otp"]

    def __init__(self, *args, zone, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("starts_at", "ends_at"):
            self.fields[name].zone = zone
        # The calendar opens on its days, not on the freeze's code at the foot of the page.
        self.fields["otp"].widget.attrs.pop("autofocus", None)
