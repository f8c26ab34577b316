from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import selectors, services
from portal.api.permissions import perm_required
from portal.api.serializers import (
    AuditEventSerializer,
    AuditVerdictSerializer,
    NotificationSerializer,
    NotificationTestSerializer,
)
from portal.filters import AuditEventFilter
from portal.routers import replica_reads

CanViewAudit = perm_required(
    selectors.AUDIT_VIEW_PERMISSION, "Reading the audit trail needs the audit view permission."
)
CanSendTestNotification = perm_required(
    "portal.send_test_notification", "Sending a test notification needs the permission to send them."
)


class AuditEventList(generics.ListAPIView):
    """The audit trail, newest first, filtered by actor, action, object and time range."""

    serializer_class = AuditEventSerializer
    permission_classes = [CanViewAudit]
    filterset_class = AuditEventFilter

    def get_queryset(self):
        return selectors.audit_events_visible_to(self.request.user)

    def list(self, request, *args, **kwargs):
        # A listing may lag the primary by a moment: let the replica serve it.
        with replica_reads():
            return super().list(request, *args, **kwargs)


class AuditEventDetail(generics.RetrieveAPIView):
    serializer_class = AuditEventSerializer
    permission_classes = [CanViewAudit]

    def get_queryset(self):
        return selectors.audit_events_visible_to(self.request.user)


class AuditVerify(APIView):
    """Walks the hash chain and names the first event that does not hold."""

    permission_classes = [CanViewAudit]

    @extend_schema(responses=AuditVerdictSerializer)
    def get(self, request):
        verdict = selectors.audit_chain_verify()
        return Response(AuditVerdictSerializer(verdict.as_dict()).data)


class NotificationTest(APIView):
    """Sends a test message through a channel, to check that it is wired up."""

    permission_classes = [CanSendTestNotification]

    @extend_schema(request=NotificationTestSerializer, responses={202: NotificationSerializer})
    def post(self, request):
        serializer = NotificationTestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        notification = services.notification_test_send(actor=request.user, **serializer.validated_data)
        return Response(NotificationSerializer(notification).data, status=status.HTTP_202_ACCEPTED)
