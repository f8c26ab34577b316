from django import forms

from portal.models import AccessPolicy, ApiToken, Notification
from portal.roles import Capacity, Role


class NotificationTestForm(forms.Form):
    channel = forms.ChoiceField(choices=Notification.Channel.choices)
    recipient = forms.CharField(
        max_length=254, help_text="An e-mail address, or a Slack channel such as #production-alerts."
    )

    def clean(self):
        data = super().clean()
        if "channel" in data and "recipient" in data:
            error = Notification.recipient_error(data["channel"], data["recipient"])
            if error:
                self.add_error("recipient", error)
        return data


class OTPForm(forms.Form):
    otp = forms.CharField(
        label="Code",
        max_length=16,
        help_text="The 6-digit code from your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class BreakGlassForm(OTPForm):
    reason = forms.CharField(
        min_length=10,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What is broken and why normal rights do not suffice. Everyone is told.",
    )
    field_order = ["reason", "otp"]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. the CI deploy job.")
    expires_in_days = forms.IntegerField(min_value=1, initial=30, label="Expires in (days)")
    scope = forms.ChoiceField(
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.FULL,
        required=False,
        help_text="A CI token only reports staging runs (DevOps make them).",
    )

    def clean_scope(self):
        return self.cleaned_data["scope"] or ApiToken.Scope.FULL

    def clean_expires_in_days(self):
        days = self.cleaned_data["expires_in_days"]
        limit = AccessPolicy.current().api_token_max_days
        if days > limit:
            raise forms.ValidationError(f"A token lasts at most {limit} days.")
        return days


class RoleForm(OTPForm):
    role = forms.ChoiceField(choices=Role.choices)
    field_order = ["role", "otp"]


class CapacityForm(OTPForm):
    capacity = forms.ChoiceField(choices=Capacity.choices)
    action = forms.ChoiceField(choices=[("grant", "Grant"), ("revoke", "Revoke")])
    field_order = ["capacity", "action", "otp"]
