from django.urls import path

from incidents import services
from incidents.api import views
from incidents.api.measures import IncidentMeasures

urlpatterns = [
    path("incidents/", views.IncidentList.as_view(), name="api-incident-list"),
    path("incidents/measures/", IncidentMeasures.as_view(), name="api-incident-measures"),
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
    path("incidents/<int:pk>/publish/", views.IncidentPublish.as_view(), name="api-incident-publish"),
    path(
        "incidents/<int:pk>/join/",
        views.IncidentTeam.as_view(act=services.incident_join),
        name="api-incident-join",
    ),
    path(
        "incidents/<int:pk>/command/",
        views.IncidentTeam.as_view(act=services.incident_take_command),
        name="api-incident-command",
    ),
    path("webhooks/sns/", views.SnsWebhook.as_view(), name="api-webhook-sns"),
    path("webhooks/pagerduty/", views.PagerDutyWebhook.as_view(), name="api-webhook-pagerduty"),
    path("incidents/<int:pk>/rollback/", views.IncidentRollback.as_view(), name="api-incident-rollback"),
    path("incidents/<int:pk>/revert/", views.IncidentRevert.as_view(), name="api-incident-revert"),
    path("incidents/<int:pk>/postmortem/", views.IncidentPostMortem.as_view(), name="api-postmortem"),
    path(
        "incidents/<int:pk>/postmortem/action-items/",
        views.PostMortemActionItems.as_view(),
        name="api-postmortem-action-items",
    ),
    path(
        "incidents/<int:pk>/postmortem/action-items/<int:item>/",
        views.PostMortemActionItem.as_view(),
        name="api-postmortem-action-item",
    ),
]
