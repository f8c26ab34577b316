from django.db import transaction
from rest_framework import generics

from deployments.api.serializers import EnvironmentSerializer, ServiceSerializer
from deployments.models import Environment, Service
from portal.api.permissions import FreshOTP, right_required
from portal.roles import Right
from portal.services import audit_record


class CatalogueListCreate(generics.ListCreateAPIView):
    """Everyone reads the catalogue; policy administrators add to it, with a fresh OTP."""

    pagination_class = None

    def get_permissions(self):
        if self.request.method == "POST":
            return [right_required(Right.ENVIRONMENT_MANAGE)(), FreshOTP()]
        return [right_required(Right.ENVIRONMENT_VIEW)()]

    def perform_create(self, serializer):
        with transaction.atomic():
            instance = serializer.save()
            audit_record(
                actor=self.request.user,
                action=f"{instance._meta.model_name}.create",
                target=instance,
                after=serializer.data,
            )


class EnvironmentList(CatalogueListCreate):
    serializer_class = EnvironmentSerializer
    queryset = Environment.objects.select_related("approval_policy")


class ServiceList(CatalogueListCreate):
    serializer_class = ServiceSerializer
    queryset = Service.objects.prefetch_related("environments")
