"""The portal's URLs plus the floor: a trivial DRF view that runs one query, served the same way."""

from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from portal.models import AccessPolicy


@api_view(["GET"])
@permission_classes([AllowAny])
def floor(request):
    return Response({"minutes": AccessPolicy.objects.values_list("break_glass_minutes", flat=True).first()})


urlpatterns = [path("bench/floor/", floor), path("", include("config.urls"))]
