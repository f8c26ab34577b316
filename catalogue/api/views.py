from rest_framework import generics

from catalogue import services
from catalogue.api.serializers import EnvironmentSerializer, ServiceSerializer
from catalogue.models import Environment, Service
from portal.api.permissions import FreshOTP, right_required
from portal.roles import Right


class CatalogueListCreate(generics.ListCreateAPIView):
    """Everyone reads the catalogue; policy administrators add to it, with a fresh OTP."""

    pagination_class = None

    def get_permissions(self):
        if self.request.method == "POST":
            return [right_required(Right.ENVIRONMENT_MANAGE)(), FreshOTP()]
        return [right_required(Right.ENVIRONMENT_VIEW)()]

    create_service = None

    def perform_create(self, serializer):
        serializer.instance = type(self).create_service(actor=self.request.user, **serializer.validated_data)


class EnvironmentList(CatalogueListCreate):
    serializer_class = EnvironmentSerializer
    queryset = Environment.objects.select_related("approval_policy")
    create_service = staticmethod(services.environment_create)


class ServiceList(CatalogueListCreate):
    serializer_class = ServiceSerializer
    queryset = Service.objects.prefetch_related("environments")
    create_service = staticmethod(services.service_create)
