from django.urls import path

from deployments import release_views, views

urlpatterns = [
    path("environments/", views.catalogue, name="catalogue"),
    path("changes/<int:pk>/deploy/", views.change_deploy, name="change-deploy"),
    path("deployments/<int:pk>/", views.deployment_detail, name="deployment-detail"),
    path("deployments/<int:pk>/report/", views.deployment_report, name="deployment-report"),
    path("deployments/<int:pk>/<slug:action>/", views.deployment_control, name="deployment-control"),
    path("releases/", release_views.release_list, name="release-list"),
    path("releases/<int:pk>/rollback/", release_views.release_rollback, name="release-rollback"),
]
