from django.urls import path

from incidents import services
from incidents.api import views

urlpatterns = [
    path("incidents/", views.IncidentList.as_view(), name="api-incident-list"),
    path("incidents/<int:pk>/", views.IncidentDetail.as_view(), name="api-incident-detail"),
    path(
        "incidents/<int:pk>/acknowledge/",
        views.IncidentStep.as_view(act=services.incident_acknowledge),
        name="api-incident-acknowledge",
    ),
    path(
        "incidents/<int:pk>/mitigate/",
        views.IncidentStep.as_view(act=services.incident_mitigate),
        name="api-incident-mitigate",
    ),
    path(
        "incidents/<int:pk>/resolve/",
        views.IncidentStep.as_view(act=services.incident_resolve),
        name="api-incident-resolve",
    ),
    path("incidents/<int:pk>/timeline/", views.IncidentTimeline.as_view(), name="api-incident-timeline"),
]
