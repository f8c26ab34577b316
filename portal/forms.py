from django import forms

from portal.models import Notification


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
