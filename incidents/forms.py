from django import forms
from django.contrib.auth import get_user_model

from catalogue.models import Service
from deployments.models import Deployment
from incidents.models import ActionItem, PostMortem, Severity
from portal.text import SingleLineText


class DeploymentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, deployment) -> str:
        return (
            f"{deployment.change.number} {deployment.version or 'unversioned'} to {deployment.environment} "
            f"({deployment.get_state_display().lower()})"
        )


class DeclareForm(forms.Form):
    title = forms.CharField(max_length=200, help_text="What is broken, as a customer would say it.")
    severity = forms.ChoiceField(choices=Severity.choices)
    services = forms.ModelMultipleChoiceField(queryset=Service.objects.all(), required=False)
    deployment = DeploymentChoiceField(
        queryset=Deployment.objects.none(),
        required=False,
        help_text="The deployment it follows, if any: it can then be rolled back from the incident.",
    )
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    public = forms.BooleanField(required=False, label="Show it on the public status page")
    public_title = forms.CharField(
        max_length=200,
        validators=[SingleLineText()],
        required=False,
        label="Public title",
        help_text="Needed to show it on the status page: what customers read there.",
    )

    def __init__(self, *args, offer_public: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not offer_public:  # the status page is for those who run incidents to speak on
            del self.fields["public"]
            del self.fields["public_title"]
        recent = Deployment.objects.select_related("change", "environment").order_by("-created_at", "-id")
        self.fields["deployment"].queryset = recent
        self.fields["deployment"].choices = [("", "None")] + [
            (d.pk, self.fields["deployment"].label_from_instance(d)) for d in recent[:20]
        ]


class NoteForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Note", max_length=5000)
    public = forms.BooleanField(
        required=False,
        label="Post it on the public status page too",
        help_text="Customers read it as written.",
    )

    def __init__(self, *args, offer_public: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not offer_public:  # a public update: a public incident, by whoever runs incidents
            del self.fields["public"]


class PublishForm(forms.Form):
    public_title = forms.CharField(
        max_length=200,
        validators=[SingleLineText()],
        label="Public title",
        help_text="What customers read on the status page; the incident's own title stays internal.",
        error_messages={"required": "Give the title the status page shows, in words for customers."},
    )


class StepForm(forms.Form):
    note = forms.CharField(required=False, max_length=2000, help_text="What was done (optional).")


class PostMortemForm(forms.ModelForm):
    class Meta:
        model = PostMortem
        fields = ["summary", "impact", "timeline", "root_cause", "went_well", "went_badly"]
        labels = {"went_well": "What went well", "went_badly": "What went badly"}
        help_texts = {
            "summary": "What happened, in a few sentences.",
            "impact": "Who was affected, how, and for how long.",
            "root_cause": "Why it happened: the cause behind the cause.",
        }
        widgets = {name: forms.Textarea(attrs={"rows": 3}) for name in fields}
        widgets["timeline"] = forms.Textarea(attrs={"rows": 8})


class ActionItemForm(forms.Form):
    title = forms.CharField(
        max_length=300, label="Action item", help_text="What will stop it happening again."
    )
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username")
    )
    due_on = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="Due on")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].label_from_instance = lambda person: person.display_name


class ActionItemStateForm(forms.Form):
    state = forms.ChoiceField(choices=ActionItem.State.choices)
