from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from catalogue.models import Environment
from deployments import selectors, services
from deployments.api import serializers as s
from deployments.forms import ReleaseFilterForm
from deployments.models import Deployment, DeploySettings
from portal.api.permissions import FreshOTP, any_right_required, right_required
from portal.roles import Right


class EnvironmentDeploySettings(APIView):
    """How Greenlight deploys to the environment: those who read deployment settings see them;
    policy administrators set them with a fresh OTP (refused while a deployment runs there)."""

    def get_permissions(self):
        if self.request.method == "PUT":
            return [right_required(Right.ENVIRONMENT_MANAGE)(), FreshOTP()]
        return [right_required(Right.ENVIRONMENT_VIEW_SETTINGS)()]

    @extend_schema(responses=s.DeploySettingsSerializer)
    def get(self, request, name: str):
        deploy = get_object_or_404(
            DeploySettings.objects.select_related("environment"), environment__name=name
        )
        return Response(s.DeploySettingsSerializer(deploy).data)

    @extend_schema(request=s.DeploySettingsSerializer, responses=s.DeploySettingsSerializer)
    def put(self, request, name: str):
        environment = get_object_or_404(Environment, name=name)
        current = DeploySettings.objects.filter(environment=environment).first()
        serializer = s.DeploySettingsSerializer(current, data=request.data)
        serializer.is_valid(raise_exception=True)
        deploy = services.deploy_settings_save(
            actor=request.user, environment=environment, **serializer.validated_data
        )
        return Response(s.DeploySettingsSerializer(deploy).data)


def _deployment_response(pk: int, code: int = status.HTTP_200_OK) -> Response:
    deployment = get_object_or_404(
        Deployment.objects.select_related("change", "environment", "started_by").prefetch_related("stages"),
        pk=pk,
    )
    return Response(s.DeploymentSerializer(deployment).data, status=code)


class ChangeDeploy(APIView):
    """Deploys a ready change (release managers, with a fresh OTP): 202 with the deployment, or
    409 with every reason it is not ready. One deployment per environment at a time."""

    permission_classes = [right_required(Right.DEPLOYMENT_DEPLOY), FreshOTP]

    @extend_schema(request=s.OtpSerializer, responses={202: s.DeploymentSerializer})
    def post(self, request, pk: int):
        from changes.models import ChangeRequest

        change = get_object_or_404(ChangeRequest, pk=pk)
        deployment = services.deploy(actor=request.user, change=change)
        return _deployment_response(deployment.pk, status.HTTP_202_ACCEPTED)


class DeploymentList(generics.ListAPIView):
    """Deployments, newest first (`?environment=name`, `?active=true`)."""

    serializer_class = s.DeploymentSerializer
    permission_classes = [right_required(Right.DEPLOYMENT_VIEW)]

    @extend_schema(
        parameters=[
            OpenApiParameter("environment", str, description="Only this environment's (its name)."),
            OpenApiParameter(
                "active", str, enum=["true", "false"], description="true: only deployments still running."
            ),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        deployments = Deployment.objects.select_related(
            "change", "environment", "started_by"
        ).prefetch_related("stages")
        if self.request.query_params.get("environment"):
            deployments = deployments.filter(environment__name=self.request.query_params["environment"])
        active = self.request.query_params.get("active")
        if active not in (None, "true", "false"):
            raise ValidationError({"active": "true or false."})
        if active == "true":
            deployments = deployments.filter(ended_at__isnull=True)
        return deployments


class DeploymentDetail(APIView):
    """A deployment's state, weights, and each stage with its checks and evidence."""

    permission_classes = [right_required(Right.DEPLOYMENT_VIEW)]

    @extend_schema(responses=s.DeploymentSerializer)
    def get(self, request, pk: int):
        return _deployment_response(pk)


class DeploymentControl(APIView):
    """Pause, resume or promote a running deployment (release managers, with a fresh OTP)."""

    permission_classes = [right_required(Right.DEPLOYMENT_DEPLOY), FreshOTP]
    act = None

    @extend_schema(request=s.OtpSerializer, responses=s.DeploymentSerializer)
    def post(self, request, pk: int):
        deployment = get_object_or_404(Deployment, pk=pk)
        self.act(actor=request.user, deployment=deployment)
        return _deployment_response(pk)


class DeploymentEndMonitoring(APIView):
    """Ends a live deployment's monitoring early, with a reason (release managers, with a fresh
    OTP): the change completes now, its report kept."""

    permission_classes = [right_required(Right.DEPLOYMENT_DEPLOY), FreshOTP]

    @extend_schema(request=s.EndMonitoringSerializer, responses=s.DeploymentSerializer)
    def post(self, request, pk: int):
        deployment = get_object_or_404(Deployment, pk=pk)
        serializer = s.EndMonitoringSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.deployment_end_monitoring(
            actor=request.user, deployment=deployment, reason=serializer.validated_data["reason"]
        )
        return _deployment_response(pk)


class DeploymentRollback(APIView):
    """Sends traffic back to the previous colour, during the deployment or after it while the old
    colour is kept; `revert` also opens the code revert. Release managers, or SREs for a change
    fixing an incident; with a fresh OTP and a reason."""

    permission_classes = [
        any_right_required(Right.DEPLOYMENT_ROLLBACK, Right.DEPLOYMENT_ROLLBACK_INCIDENT),
        FreshOTP,
    ]

    @extend_schema(request=s.RollbackSerializer, responses=s.DeploymentSerializer)
    def post(self, request, pk: int):
        deployment = get_object_or_404(Deployment.objects.select_related("change"), pk=pk)
        serializer = s.RollbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.deployment_rollback(
            actor=request.user,
            deployment=deployment,
            reason=serializer.validated_data["reason"],
            revert=serializer.validated_data["revert"],
        )
        return _deployment_response(pk)


class EnvironmentReleaseList(generics.GenericAPIView):
    """What runs in the environment and every release and rollback there, newest first and
    cursor-paginated (`?service=name`: releases of changes to that service). `live` is the release
    live now (null before the first), with `rollback_to`, the release a rollback brings back while
    its colour is kept (POST /api/v1/deployments/{live.deployment}/rollback/ does it)."""

    serializer_class = s.ReleaseSerializer
    permission_classes = [right_required(Right.CHANGE_VIEW), right_required(Right.DEPLOYMENT_VIEW)]

    @extend_schema(
        parameters=[
            OpenApiParameter("service", str, description="Releases of changes to this service."),
            OpenApiParameter("cursor", str, description="The page: a `next` or `previous` link's cursor."),
            OpenApiParameter("page_size", int, description="Releases a page (50 unless said, 500 at most)."),
        ],
        responses=s.EnvironmentReleasesSerializer,
    )
    def get(self, request, name: str):
        section = selectors.environment_releases(request.user, name)
        if section is None:
            raise Http404(f"There is no environment named {name}.")
        filters = ReleaseFilterForm({"service": request.query_params.get("service", "")})
        if not filters.is_valid():
            errors = filters.errors.get_json_data()
            raise ValidationError({field: [e["message"] for e in said] for field, said in errors.items()})
        history = selectors.release_history(
            request.user, [section.environment], service=filters.cleaned_data["service"]
        )
        rows = selectors.with_outcomes(self.paginate_queryset(history), section)
        page = self.get_paginated_response(self.get_serializer(rows, many=True).data).data
        live = (
            section.live
            and s.LiveReleaseSerializer(section.live, context={"rollback_to": section.rollback_to}).data
        )
        return Response({"environment": section.environment.name, "live": live, **page})
