from django.urls import path

from incidents import report_views, views

urlpatterns = [
    path("", views.incident_list, name="incident-list"),
    path("report/", report_views.incident_report_page, name="incident-report"),
    path("<int:pk>/", views.incident_detail, name="incident-detail"),
    path("<int:pk>/postmortem/", views.postmortem_detail, name="postmortem-detail"),
    path("<int:pk>/postmortem/items/", views.action_item_add, name="action-item-add"),
    path("<int:pk>/postmortem/items/<int:item>/", views.action_item_state, name="action-item-state"),
    path("<int:pk>/<slug:action>/", views.incident_act, name="incident-act"),
]
