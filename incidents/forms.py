from django import forms

from deployments.models import Service
from incidents.models import Severity


class DeclareForm(forms.Form):
    title = forms.CharField(max_length=200, help_text="What is broken, as a customer would say it.")
    severity = forms.ChoiceField(choices=Severity.choices)
    services = forms.ModelMultipleChoiceField(queryset=Service.objects.all(), required=False)
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    public = forms.BooleanField(required=False, label="Show it on the public status page")


class NoteForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Note", max_length=5000)


class StepForm(forms.Form):
    note = forms.CharField(required=False, max_length=2000, help_text="What was done (optional).")
