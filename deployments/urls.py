from django.urls import path

from deployments import views

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("<slug:name>/simulation/", views.simulation_switch, name="simulation-switch"),
]
