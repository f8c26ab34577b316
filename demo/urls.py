from django.urls import path

from demo import views

urlpatterns = [
    path("environments/<slug:name>/simulation/", views.simulation_switch, name="simulation-switch"),
]
