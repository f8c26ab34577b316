"""The incidents API: list and declare, one incident with its timeline, its steps (acknowledge,
mitigate, resolve) and notes. The services guard and audit every write."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents import services
from incidents.api import serializers as s
from incidents.models import Incident
from portal.api.permissions import right_required
from portal.roles import Right

WITH_LINKS = ("declared_by", "commander", "change")


def _incident_response(pk: int, code: int = status.HTTP_200_OK) -> Response:
    incident = get_object_or_404(
        Incident.objects.select_related(*WITH_LINKS).prefetch_related("services", "timeline__actor"), pk=pk
    )
    return Response(s.IncidentSerializer(incident).data, status=code)


class IncidentList(generics.ListAPIView):
    """Incidents, newest first (`?status=`, `?severity=`); POST declares one (202 with it)."""

    serializer_class = s.IncidentSerializer
    permission_classes = [right_required(Right.INCIDENT_VIEW)]

    def get_queryset(self):
        incidents = Incident.objects.select_related(*WITH_LINKS).prefetch_related(
            "services", "timeline__actor"
        )
        for name in ("status", "severity"):
            if self.request.query_params.get(name):
                incidents = incidents.filter(**{name: self.request.query_params[name]})
        return incidents

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
    """Acknowledge, mitigate or resolve (SREs and release managers); `note` says what was done."""

    permission_classes = [right_required(Right.INCIDENT_MANAGE)]
    act = None

    @extend_schema(request=s.StatusNoteSerializer, responses=s.IncidentSerializer)
    def post(self, request, pk: int):
        incident = get_object_or_404(Incident, pk=pk)
        serializer = s.StatusNoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.act(actor=request.user, incident=incident, note=serializer.validated_data["note"])
        return _incident_response(pk)


class IncidentTimeline(APIView):
    """The incident's timeline, oldest first; POST adds a note."""

    permission_classes = [right_required(Right.INCIDENT_VIEW)]

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
        entry = services.incident_note(
            actor=request.user, incident=incident, text=serializer.validated_data["text"]
        )
        return Response(s.TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)
