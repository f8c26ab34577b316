from django.urls import path

from catalogue.api import views

urlpatterns = [
    path("environments/", views.EnvironmentList.as_view(), name="api-environment-list"),
    path("services/", views.ServiceList.as_view(), name="api-service-list"),
]
