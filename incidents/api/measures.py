"""`GET /api/v1/incidents/measures/?days=30`: how fast the incidents of each severity detected in
the last days were detected, acknowledged and resolved, against their targets (the definitions are
in incidents.measures)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents.measures import REPORT_DAYS, REPORT_DAYS_MAX
from incidents.selectors import incident_report
from portal import clock
from portal.api.permissions import right_required
from portal.roles import Right


class MeasuresQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(
        min_value=1,
        max_value=REPORT_DAYS_MAX,
        default=REPORT_DAYS,
        help_text=f"Incidents detected in this many days up to now (1 to {REPORT_DAYS_MAX}).",
    )

    def to_internal_value(self, data):
        # A query string's empty value would otherwise read as "not given" and take the default.
        if hasattr(data, "get") and data.get("days") == "":
            raise serializers.ValidationError({"days": "Give a number of days, or leave the parameter out."})
        return super().to_internal_value(data)


class MeasureSummarySerializer(serializers.Serializer):
    """One measure over the incidents: the median and 90th percentile of the finished figures in
    seconds, each judged against `target_seconds` (null where there is none, or where the
    severities' targets differ), and how many figures met or missed their own target."""

    target_seconds = serializers.IntegerField(allow_null=True)
    finished = serializers.IntegerField()
    running = serializers.IntegerField()
    median_seconds = serializers.IntegerField(allow_null=True)
    p90_seconds = serializers.IntegerField(allow_null=True)
    median_met = serializers.BooleanField(allow_null=True)
    p90_met = serializers.BooleanField(allow_null=True)
    met = serializers.IntegerField()
    missed = serializers.IntegerField()
    within_target = serializers.FloatField(allow_null=True, help_text="met / (met + missed), 0 to 1.")


class MeasuresRowSerializer(serializers.Serializer):
    severity = serializers.CharField()
    incidents = serializers.IntegerField()
    ttd = MeasureSummarySerializer()
    tta = MeasureSummarySerializer()
    ttr = MeasureSummarySerializer()


class MeasuresReportSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    severities = MeasuresRowSerializer(source="rows", many=True)
    total = MeasuresRowSerializer()


class IncidentMeasures(APIView):
    """TTD, TTA and TTR per severity (P0 to P3) and in total over the last `days` days (30 unless
    said, at most 365), incidents counted by when they were detected."""

    permission_classes = [right_required(Right.INCIDENT_VIEW)]

    @extend_schema(parameters=[MeasuresQuerySerializer], responses=MeasuresReportSerializer)
    def get(self, request):
        query = MeasuresQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = incident_report(request.user, days=query.validated_data["days"], now=clock.now())
        return Response(MeasuresReportSerializer(report).data)
