from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import mfa, selectors, services
from portal.api import serializers as s
from portal.api.permissions import FreshOTP, NoToken, any_right_required, right_required
from portal.filters import AuditEventFilter
from portal.models import AuditVerdict, User
from portal.roles import Right
from portal.routers import replica_reads


class AuditEventList(generics.ListAPIView):
    """The audit trail, newest first, filtered by actor, action, object and time range."""

    serializer_class = s.AuditEventSerializer
    permission_classes = [right_required(Right.AUDIT_VIEW)]
    filterset_class = AuditEventFilter

    def get_queryset(self):
        return selectors.audit_events_visible_to(self.request.user)

    def list(self, request, *args, **kwargs):
        # A listing may lag the primary by a moment: let the replica serve it.
        with replica_reads():
            return super().list(request, *args, **kwargs)


class AuditEventDetail(generics.RetrieveAPIView):
    serializer_class = s.AuditEventSerializer
    permission_classes = [right_required(Right.AUDIT_VIEW)]

    def get_queryset(self):
        return selectors.audit_events_visible_to(self.request.user)


class AuditVerify(APIView):
    """The newest verdict on the audit chain: whether every event still matches its keyed hash and
    the chain its newest anchor (kept outside the database), and the first event that does not.
    Verification runs in the background; this answers what it last found."""

    permission_classes = [right_required(Right.AUDIT_VIEW)]

    @extend_schema(responses=s.AuditVerdictSerializer)
    def get(self, request):
        verdict = selectors.audit_verdict_latest() or AuditVerdict(
            ok=None, checked=0, total=0, problem="Not verified yet: the first run is due within 5 minutes."
        )
        return Response(s.AuditVerdictSerializer(verdict).data)


class NotificationTest(APIView):
    """Sends a test message through a channel, to check that it is wired up."""

    permission_classes = [right_required(Right.NOTIFICATION_TEST)]

    @extend_schema(request=s.NotificationTestSerializer, responses={202: s.NotificationSerializer})
    def post(self, request):
        serializer = s.NotificationTestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        notification = services.notification_test_send(actor=request.user, **serializer.validated_data)
        return Response(s.NotificationSerializer(notification).data, status=status.HTTP_202_ACCEPTED)


class Me(APIView):
    """Who the caller is, with role, capacities and the rights they hold now."""

    @extend_schema(responses=s.UserSerializer)
    def get(self, request):
        return Response(s.UserSerializer(request.user).data)


class UserList(generics.ListAPIView):
    """People and their roles: for policy administrators, who grant them, and auditors."""

    serializer_class = s.UserSerializer
    permission_classes = [any_right_required(Right.ROLE_GRANT, Right.AUDIT_VIEW)]

    def get_queryset(self):
        return User.objects.prefetch_related("capacities")


class UserRoleSet(APIView):
    permission_classes = [right_required(Right.ROLE_GRANT), FreshOTP]

    @extend_schema(request=s.RoleSetSerializer, responses=s.UserSerializer)
    def post(self, request, pk: int):
        serializer = s.RoleSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = get_object_or_404(User, pk=pk)
        user = services.user_role_set(actor=request.user, user=user, role=serializer.validated_data["role"])
        return Response(s.UserSerializer(user).data)


class UserCapacities(APIView):
    """Grant (POST) or revoke (DELETE) a capacity: security, product, engineering_lead, policy_admin."""

    permission_classes = [right_required(Right.ROLE_GRANT), FreshOTP]

    @extend_schema(request=s.CapacitySerializer, responses=s.UserSerializer)
    def post(self, request, pk: int):
        return self._change(request, pk, services.user_capacity_grant)

    @extend_schema(
        request=s.CapacitySerializer,
        responses={200: s.UserSerializer},
        description="Revokes a capacity. The body is a JSON object like POST's: `capacity` and `otp`.",
    )
    def delete(self, request, pk: int):
        return self._change(request, pk, services.user_capacity_revoke)

    def _change(self, request, pk, service):
        serializer = s.CapacitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = get_object_or_404(User, pk=pk)
        service(actor=request.user, user=user, capacity=serializer.validated_data["capacity"])
        user.forget_rights()
        return Response(s.UserSerializer(User.objects.get(pk=pk)).data)


class UserUnlock(APIView):
    """Lifts a login lockout before its cool-off ends."""

    permission_classes = [right_required(Right.ROLE_GRANT), FreshOTP]

    @extend_schema(request=s.OTPSerializer, responses=s.UserSerializer)
    def post(self, request, pk: int):
        user = get_object_or_404(User, pk=pk)
        services.user_unlock(actor=request.user, user=user)
        return Response(s.UserSerializer(user).data)


class BreakGlassList(APIView):
    """Break-glass sessions (GET) and opening one (POST, administrators, with a reason and an OTP)."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [right_required(Right.BREAK_GLASS_OPEN)(), FreshOTP()]
        return super().get_permissions()

    @extend_schema(responses=s.BreakGlassSessionSerializer(many=True))
    def get(self, request):
        sessions = selectors.break_glass_sessions_visible_to(request.user)[:100]
        return Response(s.BreakGlassSessionSerializer(sessions, many=True).data)

    @extend_schema(request=s.BreakGlassOpenSerializer, responses={201: s.BreakGlassSessionSerializer})
    def post(self, request):
        serializer = s.BreakGlassOpenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        session = services.break_glass_open(actor=request.user, reason=serializer.validated_data["reason"])
        return Response(s.BreakGlassSessionSerializer(session).data, status=status.HTTP_201_CREATED)


class BreakGlassClose(APIView):
    permission_classes = [right_required(Right.BREAK_GLASS_OPEN)]

    @extend_schema(request=None, responses=s.BreakGlassSessionSerializer)
    def post(self, request, pk: int):
        session = get_object_or_404(selectors.break_glass_sessions_visible_to(request.user), pk=pk)
        session = services.break_glass_close(actor=request.user, session=session)
        return Response(s.BreakGlassSessionSerializer(session).data)


class ApiTokenList(APIView):
    """Your API tokens (GET) and a new one (POST, from a signed-in session with a current code in
    `otp`): its secret is in this answer and nowhere else."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [*super().get_permissions(), NoToken(), FreshOTP()]
        return super().get_permissions()

    @extend_schema(responses=s.ApiTokenSerializer(many=True))
    def get(self, request):
        return Response(s.ApiTokenSerializer(selectors.api_tokens_of(request.user), many=True).data)

    @extend_schema(request=s.ApiTokenCreateSerializer, responses={201: s.ApiTokenCreatedSerializer})
    def post(self, request):
        serializer = s.ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = {key: value for key, value in serializer.validated_data.items() if key != "otp"}
        token, secret = services.api_token_create(
            actor=request.user, confirmed_by=mfa.device_words(request.otp_device), **data
        )
        token.token = secret
        return Response(s.ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class ApiTokenRevoke(APIView):
    """Revokes one of your tokens; it answers with the token as it now stands (revoking twice is
    harmless)."""

    @extend_schema(request=None, responses={200: s.ApiTokenSerializer})
    def delete(self, request, key: str):
        token = get_object_or_404(selectors.api_tokens_of(request.user), token_key=key)
        token = services.api_token_revoke(actor=request.user, token=token)
        return Response(s.ApiTokenSerializer(token).data)
