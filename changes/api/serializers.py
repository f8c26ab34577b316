from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalogue.models import SIGN_OFF_CAPACITIES, Environment, Service
from changes.choices import Decision
from changes.models import (
    Approval,
    ChangeRequest,
    ChecklistItem,
    Comment,
    DeploymentWindow,
    Freeze,
    StagingRun,
    StandardChangeTemplate,
)
from portal.api.fields import CharField, DateTimeField, LocalTimeField, TextOnly
from portal.api.serializers import FieldsBuiltOnce, OTPSerializer
from portal.models import User


class ChecklistItemSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    done_by = serializers.CharField(source="done_by.username", default=None, read_only=True, allow_null=True)
    gates_deploy = serializers.BooleanField(read_only=True)
    vouched_by = serializers.ChoiceField(
        choices=[c.value for c in SIGN_OFF_CAPACITIES],
        allow_blank=True,
        read_only=True,
        help_text="The sign-off whose holder ticks it; empty for anyone working on the change.",
    )
    connected = serializers.SerializerMethodField()

    class Meta:
        model = ChecklistItem
        fields = [
            "id",
            "key",
            "text",
            "phases",
            "integration",
            "vouched_by",
            "connected",
            "gates_deploy",
            "done",
            "done_by",
            "done_at",
            "evidence",
        ]
        read_only_fields = fields

    def get_connected(self, item) -> bool | None:
        from changes.integrations import is_connected

        return is_connected(item.integration) if item.integration else None


class ChecklistTickSerializer(serializers.Serializer):
    done = serializers.BooleanField()
    evidence = CharField(required=False, allow_blank=True, max_length=2000, default="")


class ApprovalSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    approver = serializers.CharField(source="approver.username", read_only=True)
    capacity = serializers.ChoiceField(
        choices=[c.value for c in SIGN_OFF_CAPACITIES],
        allow_blank=True,
        read_only=True,
        help_text="The sign-off this decision gives; empty for a plain approval.",
    )

    class Meta:
        model = Approval
        fields = [
            "id",
            "approver",
            "decision",
            "capacity",
            "code_owner",
            "comment",
            "revision",
            "commit",
            "second_factor",
            "created_at",
            "dismissed_at",
            "dismissed_reason",
        ]
        read_only_fields = fields


class DecisionSerializer(OTPSerializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    capacity = serializers.ChoiceField(
        choices=[c.value for c in SIGN_OFF_CAPACITIES], required=False, allow_blank=True, default=""
    )
    comment = CharField(required=False, allow_blank=True, max_length=5000, default="")


class CommentSerializer(TextOnly, serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)
    parent = serializers.PrimaryKeyRelatedField(
        queryset=Comment.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Comment
        fields = ["id", "author", "parent", "body", "created_at"]
        read_only_fields = ["id", "author", "created_at"]


class ChangeRequestSerializer(FieldsBuiltOnce, TextOnly, serializers.ModelSerializer):
    number = serializers.CharField(read_only=True)
    environment = serializers.SlugRelatedField(
        slug_field="name", queryset=Environment.objects.all(), required=False
    )
    standard_template = serializers.PrimaryKeyRelatedField(
        queryset=StandardChangeTemplate.objects.all(),
        required=False,
        allow_null=True,
        help_text="File a standard change from this pre-approved template (its id): what you leave out "
        "comes from the template, and only the approvals it names are needed.",
    )
    services = serializers.SlugRelatedField(
        slug_field="name", many=True, queryset=Service.objects.all(), required=False
    )
    stakeholders = serializers.SlugRelatedField(
        slug_field="username", many=True, queryset=User.objects.all(), required=False
    )
    stakeholder_channels = serializers.ListField(
        child=serializers.RegexField(
            r"^#[a-z0-9][a-z0-9._-]{0,79}$",
            error_messages={"invalid": "Name a Slack channel such as #releases."},
        ),
        required=False,
    )
    requester = serializers.CharField(source="requester.username", read_only=True)
    fixes_forward = serializers.PrimaryKeyRelatedField(
        queryset=ChangeRequest.objects.all(),
        required=False,
        allow_null=True,
        help_text="The rolled-back change (its id) whose code, still on the branch, this one fixes.",
    )
    emergency_review = serializers.SerializerMethodField(
        help_text="For an emergency change approved up front: when its full review is due, when it was done."
    )
    checklist_done = serializers.IntegerField(read_only=True)
    checklist_total = serializers.IntegerField(read_only=True)
    approval_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "number",
            "title",
            "description",
            "rollback_plan",
            "change_type",
            "risk",
            "risk_assessment",
            "environment",
            "services",
            "has_migrations",
            "source_branch",
            "target_branch",
            "pull_request",
            "version_bump",
            "stakeholders",
            "stakeholder_channels",
            "requester",
            "status",
            "revision",
            "created_at",
            "updated_at",
            "submitted_at",
            "approved_at",
            "approved_commit",
            "scheduled_start",
            "scheduled_end",
            "standard_template",
            "incident",
            "fixes_forward",
            "emergency_review",
            "freeze_override",
            "checklist_done",
            "checklist_total",
            "approval_count",
        ]
        read_only_fields = [
            "status",
            "revision",
            "created_at",
            "updated_at",
            "submitted_at",
            "approved_at",
            "approved_commit",
            "scheduled_start",
            "scheduled_end",
            "freeze_override",
        ]
        extra_kwargs = {
            "rollback_plan": {"allow_blank": False, "required": False},
            "description": {"required": False},
            "incident": {"help_text": "The incident an emergency change fixes (its id); required for one."},
        }

    # Filled from a standard template when left out; required otherwise.
    FROM_TEMPLATE = ("description", "rollback_plan", "risk", "risk_assessment", "environment")

    def validate(self, attrs):
        self._refuse_target_branch(attrs)
        if self.instance is not None:
            if "standard_template" in attrs:
                raise serializers.ValidationError(
                    {"standard_template": "A change is filed from a template, once."}
                )
            return attrs
        template = attrs.get("standard_template")
        if template is not None:
            attrs.setdefault("change_type", "standard")
            for name in self.FROM_TEMPLATE:
                if name not in attrs and getattr(template, name) not in (None, ""):
                    attrs[name] = getattr(template, name)
            if "services" not in attrs:
                attrs["services"] = list(template.services.all())
        missing = {
            name: "This field is required."
            for name in ("description", "rollback_plan", "environment")
            if name not in attrs
        }
        if missing:
            raise serializers.ValidationError(missing)
        return attrs

    def _refuse_target_branch(self, attrs) -> None:
        """The branch a change merges into is its environment's: one named otherwise is refused
        in words rather than ignored."""
        named = self.initial_data.get("target_branch") if hasattr(self.initial_data, "get") else None
        environment = attrs.get("environment") or getattr(self.instance, "environment", None)
        if named is None or environment is None or named == environment.branch:
            return
        raise serializers.ValidationError(
            {
                "target_branch": f"A change merges into its environment's branch ({environment.branch} "
                f"for {environment.name}); it is not chosen."
            }
        )

    def get_emergency_review(self, change) -> dict | None:
        if change.review_due_at is None:
            return None
        return {
            "due_at": change.review_due_at,
            "done_at": change.reviewed_at,
            "overdue": change.review_overdue,
        }


LIST_FIELDS = [
    "id",
    "number",
    "title",
    "change_type",
    "risk",
    "environment",
    "services",
    "requester",
    "status",
    "revision",
    "version_bump",
    "created_at",
    "updated_at",
    "submitted_at",
    "approved_at",
]


class ChangeListSerializer(ChangeRequestSerializer):
    """A row of the list: what a list shows, with progress; the detail has the rest."""

    required_approvals = serializers.IntegerField(read_only=True)
    services = serializers.ListField(source="service_names", child=serializers.CharField(), read_only=True)

    class Meta(ChangeRequestSerializer.Meta):
        fields = [*LIST_FIELDS, "checklist_done", "checklist_total", "approval_count", "required_approvals"]
        read_only_fields = fields


class PullRequestSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    reviews = serializers.SerializerMethodField(help_text="Each reviewer's standing review.")

    class Meta:
        from changes.models import PullRequest

        model = PullRequest
        fields = [
            "number",
            "url",
            "head_sha",
            "mergeable",
            "required_checks",
            "reviews",
            "changed_files",
            "owners",
            "owner_logins",
            "unsigned",
            "carried_from",
            "read_at",
            "error",
        ]
        read_only_fields = fields

    def get_reviews(self, pull) -> dict[str, str]:
        return pull.latest_reviews()


class ReleaseSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    shipped_with = serializers.SlugRelatedField(slug_field="number", many=True, read_only=True)

    class Meta:
        from changes.models import Release

        model = Release
        fields = [
            "version",
            "previous_tag",
            "head_commit",
            "merge_commit",
            "merged_at",
            "tagged_at",
            "published_at",
            "url",
            "notes",
            "error",
            "shipped_with",
        ]
        read_only_fields = fields


class ChangeDetailSerializer(ChangeRequestSerializer):
    services = serializers.ListField(source="service_names", child=serializers.CharField(), read_only=True)
    checklist = ChecklistItemSerializer(many=True, read_only=True)
    staging_soak = serializers.SerializerMethodField(
        help_text="The staging soak gate: open or not, why, and when it opens."
    )
    approvals = ApprovalSerializer(many=True, read_only=True)
    quorum = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField(
        help_text="What the caller may do now: {action: {allowed, reason}}, the reason saying why not."
    )
    gates = serializers.SerializerMethodField(help_text="What stands between the change and Deploy.")
    repository = serializers.SerializerMethodField(
        help_text="What the repository last said about the pull request (null before it was read)."
    )
    release = serializers.SerializerMethodField(
        help_text="The release cut when the change deployed, step by step (null before)."
    )
    ships = serializers.SerializerMethodField(
        help_text="The commits its release would ship, each with the changes it belongs to and those "
        "not approved on it (null before its branch was read)."
    )
    released_in = serializers.SerializerMethodField(
        help_text="Releases of other changes that carried its commits: released together."
    )

    class Meta(ChangeRequestSerializer.Meta):
        fields = [
            *ChangeRequestSerializer.Meta.fields,
            "checklist",
            "approvals",
            "quorum",
            "actions",
            "staging_soak",
            "gates",
            "repository",
            "release",
            "ships",
            "released_in",
        ]

    def get_gates(self, change) -> list[dict]:
        from changes.selectors import change_quorum, deploy_gates

        return deploy_gates(change, change_quorum(change))

    def get_repository(self, change) -> dict | None:
        from changes.selectors import pull_request_of

        pull = pull_request_of(change)
        return PullRequestSerializer(pull).data if pull is not None else None

    def get_release(self, change) -> dict | None:
        from changes.models import Release

        try:
            return ReleaseSerializer(change.release).data
        except Release.DoesNotExist:
            return None

    def get_ships(self, change) -> list[dict] | None:
        from changes.selectors import change_contents

        contents = change_contents(change)
        if contents is None:
            return None
        return [
            {
                "sha": shipped.sha,
                "subject": shipped.subject,
                "belongs_to": [owner.number for owner in shipped.owners],
                "not_approved": [owner.number for owner in shipped.unapproved],
            }
            for shipped in contents
        ]

    def get_released_in(self, change) -> list[dict]:
        return [
            {"version": release.version, "change": release.change.number}
            for release in change.shipped_in.select_related("change")
        ]

    def get_staging_soak(self, change) -> dict:
        from changes.soak import soak_of
        from portal import clock

        soak = soak_of(change, now=clock.now())
        return {"open": soak.open, "message": soak.message, "opens_at": soak.opens_at}

    def get_actions(self, change) -> dict:
        from changes.selectors import change_actions

        request = self.context.get("request")
        if request is None:
            return {}
        actions = change_actions(request.user, change)
        return {name: {"allowed": reason is None, "reason": reason} for name, reason in actions.items()}

    def get_quorum(self, change) -> dict:
        from changes.selectors import change_quorum

        summary = change_quorum(change)
        return {
            "satisfied": summary.satisfied,
            "approvals": summary.approvals,
            "required_approvals": summary.required_approvals,
            "code_owner_approvals": summary.code_owner_approvals,
            "required_code_owner_approvals": summary.required_code_owner_approvals,
            "sign_offs": sorted(summary.sign_offs),
            "missing_sign_offs": summary.missing_sign_offs,
            "explanation": summary.explain(),
        }


class HistoryEntrySerializer(serializers.Serializer):
    """One act in a change's timeline, as its page shows it."""

    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_name", help_text="Who acted (empty for the portal).")
    action = serializers.CharField()
    note = serializers.SerializerMethodField(help_text="What the person wrote with the act, if anything.")

    def get_note(self, event) -> str:
        note = (event.after or {}).get("note") if isinstance(event.after, dict) else None
        return note if isinstance(note, str) else ""


class CancelSerializer(serializers.Serializer):
    reason = CharField(max_length=2000)


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantField(serializers.Field):
    """An ISO 8601 date and time: with an offset it is that instant; without one it is read on the
    environment's clock (`context["zone"]`), and refused where that clock skips or repeats it."""

    default_error_messages = {
        "invalid": "Give a date and time such as 2027-03-02T02:00 or 2027-03-02T02:00+01:00."
    }

    def to_internal_value(self, data):
        from django.utils.dateparse import parse_datetime

        from changes.calendar import TimeRefused, local_moment
        from portal.api.fields import instant_problem

        try:
            value = parse_datetime(str(data))
        except ValueError:
            value = None
        if value is None:
            self.fail("invalid")
        try:
            moment = local_moment(value, self.context["zone"])
        except TimeRefused as refused:
            raise serializers.ValidationError(str(refused)) from None
        if problem := instant_problem(moment):
            raise serializers.ValidationError(problem)
        return moment

    def to_representation(self, value):
        return value.isoformat()


class ScheduleSerializer(serializers.Serializer):
    window_start = InstantField()
    window_end = InstantField()


class SlotSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class ScheduleRefusedSerializer(serializers.Serializer):
    """A refused slot: why, and the next free one when the refusal is about the calendar (none when
    it is about the change's state, or no slot fits in the next three months)."""

    detail = serializers.CharField()
    code = serializers.CharField()
    next_slot = SlotSerializer(allow_null=True, required=False)


class DeploymentWindowSerializer(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="name", queryset=Environment.objects.all())
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        allow_empty=False,
        help_text="0 = Monday ... 6 = Sunday.",
    )
    time_zone = serializers.CharField(source="environment.time_zone", read_only=True)
    start_time = LocalTimeField(help_text="On the environment's clock (no offset), such as 02:00.")
    end_time = LocalTimeField(help_text="On the environment's clock (no offset), such as 05:00.")
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    otp = serializers.CharField(
        write_only=True, max_length=16, help_text="A current code from your authenticator app."
    )  # checked by FreshOTP before this serializer runs; here so the schema asks for it

    class Meta:
        model = DeploymentWindow
        fields = [
            "id",
            "environment",
            "weekdays",
            "start_time",
            "end_time",
            "time_zone",
            "created_by",
            "created_at",
            "otp",
        ]
        read_only_fields = ["id", "created_at"]


class FreezeSerializer(TextOnly, serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="name", queryset=Environment.objects.all())
    starts_at = DateTimeField()
    ends_at = DateTimeField()
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    scheduled_inside = serializers.SerializerMethodField(
        help_text="Changes already scheduled inside the freeze (told to move), on creation."
    )
    otp = serializers.CharField(
        write_only=True, max_length=16, help_text="A current code from your authenticator app."
    )  # checked by FreshOTP before this serializer runs; here so the schema asks for it

    class Meta:
        model = Freeze
        fields = [
            "id",
            "environment",
            "starts_at",
            "ends_at",
            "reason",
            "created_by",
            "created_at",
            "scheduled_inside",
            "otp",
        ]
        read_only_fields = ["id", "created_at"]

    def get_scheduled_inside(self, freeze) -> list[str]:
        return [change.number for change in getattr(freeze, "scheduled_inside", [])]


class StagingRunSerializer(TextOnly, serializers.ModelSerializer):
    """A report from CI: the commit, what CI calls it, the result. Its time is the portal's."""

    environment = serializers.SlugRelatedField(slug_field="name", queryset=Environment.objects.all())
    recorded_by = serializers.CharField(
        source="recorded_by.username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = StagingRun
        fields = ["id", "environment", "commit", "version", "result", "at", "url", "recorded_by"]
        read_only_fields = ["id", "at"]
        extra_kwargs = {"version": {"required": False}}

    def validate(self, attrs):
        if hasattr(self.initial_data, "get") and self.initial_data.get("at") is not None:
            raise serializers.ValidationError(
                {"at": "A staging run is stamped with the portal's time when it arrives; leave `at` out."}
            )
        return attrs


class StandardChangeTemplateSerializer(TextOnly, serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(
        slug_field="name", queryset=Environment.objects.all(), required=False, allow_null=True
    )
    services = serializers.SlugRelatedField(
        slug_field="name", many=True, queryset=Service.objects.all(), required=False
    )
    required_sign_offs = serializers.ListField(
        child=serializers.ChoiceField(choices=[c.value for c in SIGN_OFF_CAPACITIES]),
        required=False,
        help_text="Each sign-off the change needs, once.",
    )
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = StandardChangeTemplate
        fields = [
            "id",
            "name",
            "description",
            "rollback_plan",
            "risk",
            "risk_assessment",
            "environment",
            "services",
            "min_approvals",
            "min_code_owner_approvals",
            "required_sign_offs",
            "active",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["id", "active", "created_by", "created_at"]

    def validate_required_sign_offs(self, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise serializers.ValidationError(f"Name each sign-off once ({', '.join(repeated)} is repeated).")
        return value

    def validate(self, attrs):
        def given(name: str) -> int:
            return attrs.get(name, StandardChangeTemplate._meta.get_field(name).get_default())

        approvals, owners = given("min_approvals"), given("min_code_owner_approvals")
        if owners > approvals:
            raise serializers.ValidationError(
                {
                    "min_code_owner_approvals": f"At most min_approvals ({approvals}): code owners' "
                    "approvals are among the approvals."
                }
            )
        return attrs
