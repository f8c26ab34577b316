from rest_framework import serializers

from portal.models import AuditEvent, Notification


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor_id",
            "actor_name",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "ip",
            "user_agent",
            "request_id",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class AuditVerdictSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField()
    first_bad_id = serializers.IntegerField(allow_null=True)
    problem = serializers.CharField(allow_blank=True)


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
