import copy

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal import mfa
from portal.models import ApiToken, AuditEvent, AuditVerdict, BreakGlassSession, Notification, User
from portal.roles import Capacity, Role, rights_of


class FieldsBuiltOnce:
    """For a ModelSerializer read on every request: DRF works out its fields from the model's
    metadata for each new serializer; they come out the same each time, so they are worked out
    once for the class and deep-copied for each serializer, as DRF copies declared fields."""

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_fields_built")
        if built is None:
            built = super().get_fields()
            cls._fields_built = built
        return copy.deepcopy(built)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", *AuditEvent.HASHED_FIELDS, "prev_hash", "hash"]
        read_only_fields = fields


class AuditVerdictSerializer(serializers.ModelSerializer):
    """The newest verdict of `audit verify`, which runs in the background (every 5 minutes on from
    the last sound event, daily from the first); `ok` is null before the first run."""

    ok = serializers.BooleanField(allow_null=True)

    class Meta:
        model = AuditVerdict
        fields = [
            "ok",
            "ran_at",
            "seconds",
            "full",
            "checked",
            "total",
            "head_id",
            "first_bad_id",
            "problem",
            "anchor_event_id",
            "anchor_written_at",
            "anchor_where",
        ]
        # Null, as `ok` is, before the first run.
        extra_kwargs = {name: {"allow_null": True} for name in ("ran_at", "seconds", "full")}


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = [
            "id",
            "channel",
            "recipient",
            "subject",
            "status",
            "attempts",
            "last_error",
            "created_at",
            "sent_at",
        ]
        read_only_fields = fields


class NotificationTestSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Notification.Channel.choices)
    recipient = serializers.CharField(max_length=254)

    def validate(self, attrs):
        error = Notification.recipient_error(attrs["channel"], attrs["recipient"])
        if error:
            raise serializers.ValidationError({"recipient": error})
        return attrs


class OTPSerializer(serializers.Serializer):
    otp = serializers.CharField(
        max_length=16, help_text="A current code from your authenticator app (or a backup code)."
    )


class UserSerializer(serializers.ModelSerializer):
    capacities = serializers.SerializerMethodField()
    rights = serializers.SerializerMethodField()
    mfa_enabled = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "first_name",
            "last_name",
            "email",
            "role",
            "capacities",
            "github_login",
            "time_zone",
            "is_active",
            "mfa_enabled",
            "rights",
        ]
        read_only_fields = fields

    def get_capacities(self, user) -> list[str]:
        return sorted(user.capacity_names())

    def get_rights(self, user) -> list[str]:
        return sorted(rights_of(user))

    def get_mfa_enabled(self, user) -> bool:
        return mfa.has_device(user)


class RoleSetSerializer(OTPSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class CapacitySerializer(OTPSerializer):
    capacity = serializers.ChoiceField(choices=Capacity.choices)


class BreakGlassSessionSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = BreakGlassSession
        fields = ["id", "user", "reason", "opened_at", "expires_at", "closed_at", "active"]
        read_only_fields = fields

    def get_active(self, session) -> bool:
        return session.is_active()


class BreakGlassOpenSerializer(OTPSerializer):
    reason = serializers.CharField(min_length=10, max_length=2000)


TOKEN_STATUSES = ["active", "revoked", "expired"]


class ApiTokenSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="token_key", read_only=True, help_text="The token's public prefix.")
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "scope",
            "created",
            "expiry",
            "last_used_at",
            "last_used_ip",
            "revoked_at",
            "status",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=TOKEN_STATUSES))
    def get_status(self, token) -> str:
        if token.revoked_at:
            return "revoked"
        return "active" if token.is_usable() else "expired"


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(
        read_only=True,
        help_text="The secret, sent as `Authorization: Token <secret>`. It is in this answer and "
        "nowhere else: only its digest is kept.",
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenCreateSerializer(OTPSerializer):
    name = serializers.CharField(max_length=100, help_text="What uses it, e.g. 'CI deploy job'.")
    expires_in_days = serializers.IntegerField(min_value=1, default=30)
    scope = serializers.ChoiceField(
        choices=ApiToken.Scope.choices,
        default=ApiToken.Scope.WRITE,
        help_text="read: only reading calls; write: everything you may do; ci: only report staging "
        "runs (needs staging.report).",
    )
