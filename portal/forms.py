from django import forms
from django.contrib.auth import forms as auth_forms

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


class ApiTokenForm(OTPForm):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. the CI deploy job.")
    expires_in_days = forms.IntegerField(min_value=1, initial=30, label="Expires in (days)")
    scope = forms.ChoiceField(
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ,
        required=False,
        help_text="A read token only reads; a write token does all you may; a CI token only reports "
        "staging runs (DevOps make them).",
    )
    field_order = ["name", "expires_in_days", "scope", "otp"]

    def clean_scope(self):
        return self.cleaned_data["scope"] or ApiToken.Scope.WRITE

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


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """The old password, the new one twice, and a current code: a session left open somewhere is
    not enough to lock its owner out."""

    otp = OTPForm.base_fields["otp"]
    field_order = ["old_password", "new_password1", "new_password2", "otp"]


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Asks for a reset link by e-mail. The link goes straight to the mail server (the portal's
    e-mail settings), never into the outbox's table, and its request is audited."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        import logging

        from django.template import loader

        from portal import notify, services

        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        services.password_reset_requested_record(user=context["user"])
        try:
            notify.deliver(channel="email", recipient=to_email, subject=subject, body=body)
        except notify.DeliveryError as error:
            # The page says the same whether or not an account has the address; the log tells why.
            logging.getLogger(__name__).warning("password reset e-mail not sent: %s", error)
