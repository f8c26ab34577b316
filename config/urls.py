"""The root URLs: each app's own, included; nothing routed here but the admin and the API's schema."""

from django.apps import apps
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import views
from portal.admin import GreenlightAdminSite
from portal.api import errors

# The admin site asks for a verified second factor too; rights there come from break-glass.
admin.site.__class__ = GreenlightAdminSite

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("portal.urls")),
    path("", include("changes.urls")),
    path("", include("deployments.urls")),
    *([path("", include("demo.urls"))] if apps.is_installed("demo") else []),
    path("incidents/", include("incidents.urls")),
    path("status/", include("incidents.status_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("portal.api.urls")),
    path("api/v1/", include("catalogue.api.urls")),
    path("api/v1/", include("changes.api.urls")),
    path("api/v1/", include("deployments.api.urls")),
    path("api/v1/", include("incidents.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Anything else under /api/ is a JSON 404, not an HTML page.
    re_path(r"^api/", errors.not_found),
]

handler403 = "portal.views.errors.forbidden"
handler404 = "portal.views.errors.not_found"
handler500 = "portal.views.errors.server_error"
