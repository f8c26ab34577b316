"""The public status page's routes (no sign-in): included at /status/."""

from django.urls import path

from incidents import status_views

urlpatterns = [
    path("", status_views.status_page, name="status-page"),
    path("subscribe/", status_views.status_subscribe, name="status-subscribe"),
    # Each link carries the subscription's token, when it was sent and a signature, with dots.
    path("confirm/<str:token>/", status_views.status_confirm, name="status-confirm"),
    path("unsubscribe/<str:token>/", status_views.status_unsubscribe, name="status-unsubscribe"),
]
