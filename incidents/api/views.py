"""The incidents API: list and declare, one incident with its timeline, its steps (acknowledge,
mitigate, resolve) and notes, acting on what it follows (rollback, revert), and its post-mortem
with action items. The services guard and audit every write."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.api.serializers import OtpSerializer, RollbackSerializer
from incidents import services
from incidents.api import serializers as s
from incidents.models import ActionItem, Incident, IncidentStatus, Severity
from incidents.selectors import postmortem_of
from portal.api.permissions import FreshOTP, any_right_required, read_write_rights, right_required
from portal.roles import Right

WITH_LINKS = ("declared_by", "commander", "change")


def _incident_response(pk: int, code: int = status.HTTP_200_OK) -> Response:
    incident = get_object_or_404(
        Incident.objects.select_related(*WITH_LINKS).prefetch_related(
            "services", "responders", "timeline__actor"
        ),
        pk=pk,
    )
    return Response(s.IncidentSerializer(incident).data, status=code)


class IncidentList(generics.ListAPIView):
    """Incidents, newest first (`?status=`, `?severity=`); POST declares one (201 with it)."""

    serializer_class = s.IncidentSerializer
    permission_classes = [read_write_rights(read=Right.INCIDENT_VIEW, write=Right.INCIDENT_DECLARE)]

    def get_queryset(self):
        incidents = Incident.objects.select_related(*WITH_LINKS).prefetch_related(
            "services", "responders", "timeline__actor"
        )
        for name, choices in (("status", IncidentStatus), ("severity", Severity)):
            value = self.request.query_params.get(name)
            if value is not None and value not in choices.values:
                raise ValidationError({name: f"One of {', '.join(choices.values)}."})
            if value:
                incidents = incidents.filter(**{name: value})
        return incidents

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", enum=IncidentStatus.values, description="Only incidents in this state."
            ),
            OpenApiParameter(
                "severity", enum=Severity.values, description="Only incidents of this severity."
            ),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=s.DeclareSerializer, responses={201: s.IncidentSerializer})
    def post(self, request):
        serializer = s.DeclareSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        incident = services.incident_declare(actor=request.user, **serializer.validated_data)
        return _incident_response(incident.pk, status.HTTP_201_CREATED)


class IncidentDetail(APIView):
    permission_classes = [right_required(Right.INCIDENT_VIEW)]

    @extend_schema(responses=s.IncidentSerializer)
    def get(self, request, pk: int):
        return _incident_response(pk)


class IncidentStep(APIView):
    """Acknowledge, mitigate or resolve (whoever runs incidents: SREs); `note` says what was done."""

    permission_classes = [right_required(Right.INCIDENT_MANAGE)]
    act = None

    @extend_schema(request=s.StatusNoteSerializer, responses=s.IncidentSerializer)
    def post(self, request, pk: int):
        incident = get_object_or_404(Incident, pk=pk)
        serializer = s.StatusNoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.act(actor=request.user, incident=incident, note=serializer.validated_data["note"])
        return _incident_response(pk)


class IncidentTeam(APIView):
    """Joins the response (anyone who may declare incidents) or takes command (whoever runs
    incidents), as the caller."""

    permission_classes = [right_required(Right.INCIDENT_DECLARE)]
    act = None

    def get_permissions(self):
        if self.act is services.incident_take_command:
            return [right_required(Right.INCIDENT_MANAGE)()]
        return super().get_permissions()

    @extend_schema(request=None, responses=s.IncidentSerializer)
    def post(self, request, pk: int):
        self.act(actor=request.user, incident=get_object_or_404(Incident, pk=pk))
        return _incident_response(pk)


class IncidentPublish(APIView):
    """Puts the incident on the public status page (`public: true`) or takes it off (SREs)."""

    permission_classes = [right_required(Right.INCIDENT_MANAGE)]

    @extend_schema(request=s.PublishSerializer, responses=s.IncidentSerializer)
    def post(self, request, pk: int):
        serializer = s.PublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        incident = get_object_or_404(Incident, pk=pk)
        services.incident_publish(actor=request.user, incident=incident, **serializer.validated_data)
        return _incident_response(pk)


class IncidentTimeline(APIView):
    """The incident's timeline, oldest first; POST adds a note."""

    permission_classes = [read_write_rights(read=Right.INCIDENT_VIEW, write=Right.INCIDENT_DECLARE)]

    @extend_schema(responses=s.TimelineEntrySerializer(many=True))
    def get(self, request, pk: int):
        incident = get_object_or_404(Incident, pk=pk)
        entries = incident.timeline.select_related("actor")
        return Response(s.TimelineEntrySerializer(entries, many=True).data)

    @extend_schema(request=s.NoteSerializer, responses={201: s.TimelineEntrySerializer})
    def post(self, request, pk: int):
        incident = get_object_or_404(Incident, pk=pk)
        serializer = s.NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = services.incident_note(actor=request.user, incident=incident, **serializer.validated_data)
        return Response(s.TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class SnsWebhook(APIView):
    """CloudWatch alarms through an AWS SNS HTTPS subscription (no portal login: the message's own
    signature is checked against AWS's certificate). A subscription is confirmed; ALARM declares an
    incident or tells the open one, OK tells it too. Forged, unsigned, stale or from a topic
    SNS_TOPIC_ARNS does not list: 403, nothing kept; none listed: 503."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(request=None, responses={200: None, 400: None, 403: None, 502: None, 503: None})
    def post(self, request):
        from incidents import inbound
        from portal.api.errors import json_error

        try:
            outcome = inbound.sns_receive(request._request.body)  # the exact bytes SNS signed
        except inbound.Refused as refused:
            return json_error(refused.status, refused.message, refused.code)
        return Response({"detail": outcome.detail}, status=outcome.status)


class PagerDutyWebhook(APIView):
    """PagerDuty's V3 webhooks, signed with the subscription's secret (`X-PagerDuty-Signature`):
    an incident acknowledged or resolved on PagerDuty is acknowledged or resolved here, once. A
    missing or wrong signature is a 401 and changes nothing; other events are a 202, ignored."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(request=None, responses={200: None, 202: None, 400: None, 401: None, 503: None})
    def post(self, request):
        from incidents import inbound
        from portal.api.errors import json_error

        try:
            outcome = inbound.pagerduty_receive(
                body=request._request.body, signatures=request.headers.get("X-PagerDuty-Signature", "")
            )
        except inbound.Refused as refused:
            return json_error(refused.status, refused.message, refused.code)
        return Response({"detail": outcome.detail}, status=outcome.status)


class IncidentRollback(APIView):
    """Rolls back the deployment the incident follows (release managers; SREs while the incident is
    open), with a fresh OTP and a reason; `revert` also opens the code revert. Answers the incident."""

    permission_classes = [
        any_right_required(Right.DEPLOYMENT_ROLLBACK, Right.DEPLOYMENT_ROLLBACK_INCIDENT),
        FreshOTP,
    ]

    @extend_schema(request=RollbackSerializer, responses=s.IncidentSerializer)
    def post(self, request, pk: int):
        incident = get_object_or_404(Incident.objects.select_related("deployment__change"), pk=pk)
        serializer = RollbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.incident_rollback(
            actor=request.user,
            incident=incident,
            reason=serializer.validated_data["reason"],
            revert=serializer.validated_data["revert"],
        )
        return _incident_response(pk)


class IncidentRevert(APIView):
    """Asks for the code revert of the release the incident follows, with a fresh OTP (202: a task
    opens it; the timeline says what came of it)."""

    permission_classes = [
        any_right_required(Right.DEPLOYMENT_ROLLBACK, Right.DEPLOYMENT_ROLLBACK_INCIDENT),
        FreshOTP,
    ]

    @extend_schema(request=OtpSerializer, responses={202: s.IncidentSerializer})
    def post(self, request, pk: int):
        incident = get_object_or_404(Incident, pk=pk)
        OtpSerializer(data=request.data).is_valid(raise_exception=True)
        services.incident_revert(actor=request.user, incident=incident)
        return _incident_response(pk, status.HTTP_202_ACCEPTED)


class IncidentPostMortem(APIView):
    """The incident's post-mortem (404 while it owes none); PATCH writes its parts and, with
    `complete: true`, finishes it."""

    permission_classes = [read_write_rights(read=Right.INCIDENT_VIEW, write=Right.INCIDENT_DECLARE)]

    @extend_schema(responses=s.PostMortemSerializer)
    def get(self, request, pk: int):
        return Response(s.PostMortemSerializer(postmortem_of(pk)).data)

    @extend_schema(request=s.PostMortemSerializer, responses=s.PostMortemSerializer)
    def patch(self, request, pk: int):
        postmortem = postmortem_of(pk)
        serializer = s.PostMortemSerializer(postmortem, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.postmortem_save(actor=request.user, postmortem=postmortem, **serializer.validated_data)
        return Response(s.PostMortemSerializer(postmortem_of(pk)).data)

    post = patch  # the contract's POST .../postmortem/ writes it too


class PostMortemActionItems(APIView):
    """Adds an action item (title, owner by username, due_on); its owner is told."""

    permission_classes = [right_required(Right.INCIDENT_DECLARE)]

    @extend_schema(request=s.ActionItemCreateSerializer, responses={201: s.ActionItemSerializer})
    def post(self, request, pk: int):
        postmortem = postmortem_of(pk)
        serializer = s.ActionItemCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = services.action_item_add(
            actor=request.user, postmortem=postmortem, **serializer.validated_data
        )
        return Response(s.ActionItemSerializer(item).data, status=status.HTTP_201_CREATED)


class PostMortemActionItem(APIView):
    """Sets an action item's state (open, done, dropped): its owner, or whoever runs incidents."""

    permission_classes = [right_required(Right.INCIDENT_DECLARE)]

    @extend_schema(request=s.ActionItemStateSerializer, responses=s.ActionItemSerializer)
    def patch(self, request, pk: int, item: int):
        action_item = get_object_or_404(
            ActionItem.objects.select_related("owner"), pk=item, postmortem__incident_id=pk
        )
        serializer = s.ActionItemStateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        action_item = services.action_item_set_state(
            actor=request.user, item=action_item, state=serializer.validated_data["state"]
        )
        return Response(s.ActionItemSerializer(action_item).data)
