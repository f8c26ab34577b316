from django.urls import path

from portal.api import views

urlpatterns = [
    path("audit/", views.AuditEventList.as_view(), name="api-audit-list"),
    path("audit/verify/", views.AuditVerify.as_view(), name="api-audit-verify"),
    path("audit/<int:pk>/", views.AuditEventDetail.as_view(), name="api-audit-detail"),
    path("notifications/test/", views.NotificationTest.as_view(), name="api-notification-test"),
]
