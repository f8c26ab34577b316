from django import forms

from portal.forms import OTPForm


class RollbackForm(OTPForm):
    reason = forms.CharField(
        max_length=2000, help_text="Why traffic goes back, for the record and the people told."
    )
    revert = forms.BooleanField(required=False, label="Also open the code revert in the repository")
