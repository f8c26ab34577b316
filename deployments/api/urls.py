from django.urls import path

from deployments import services
from deployments.api import views

urlpatterns = [
    path(
        "environments/<slug:name>/deploy-settings/",
        views.EnvironmentDeploySettings.as_view(),
        name="api-environment-deploy-settings",
    ),
    path(
        "environments/<slug:name>/releases/",
        views.EnvironmentReleaseList.as_view(),
        name="api-environment-releases",
    ),
    path("changes/<int:pk>/deploy/", views.ChangeDeploy.as_view(), name="api-change-deploy"),
    path("deployments/", views.DeploymentList.as_view(), name="api-deployment-list"),
    path("deployments/<int:pk>/", views.DeploymentDetail.as_view(), name="api-deployment-detail"),
    path(
        "deployments/<int:pk>/pause/",
        views.DeploymentControl.as_view(act=services.deployment_pause),
        name="api-deployment-pause",
    ),
    path(
        "deployments/<int:pk>/resume/",
        views.DeploymentControl.as_view(act=services.deployment_resume),
        name="api-deployment-resume",
    ),
    path(
        "deployments/<int:pk>/promote/",
        views.DeploymentControl.as_view(act=services.deployment_promote),
        name="api-deployment-promote",
    ),
    path(
        "deployments/<int:pk>/end-monitoring/",
        views.DeploymentEndMonitoring.as_view(),
        name="api-deployment-end-monitoring",
    ),
    path(
        "deployments/<int:pk>/rollback/", views.DeploymentRollback.as_view(), name="api-deployment-rollback"
    ),
]
