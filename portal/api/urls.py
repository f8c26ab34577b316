from django.urls import path

from portal.api import views

urlpatterns = [
    path("audit/", views.AuditEventList.as_view(), name="api-audit-list"),
    path("audit/verify/", views.AuditVerify.as_view(), name="api-audit-verify"),
    path("audit/<int:pk>/", views.AuditEventDetail.as_view(), name="api-audit-detail"),
    path("notifications/test/", views.NotificationTest.as_view(), name="api-notification-test"),
    path("me/", views.Me.as_view(), name="api-me"),
    path("users/", views.UserList.as_view(), name="api-user-list"),
    path("users/<int:pk>/role/", views.UserRoleSet.as_view(), name="api-user-role"),
    path("users/<int:pk>/capacities/", views.UserCapacities.as_view(), name="api-user-capacities"),
    path("users/<int:pk>/unlock/", views.UserUnlock.as_view(), name="api-user-unlock"),
    path("break-glass/", views.BreakGlassList.as_view(), name="api-break-glass"),
    path("break-glass/<int:pk>/close/", views.BreakGlassClose.as_view(), name="api-break-glass-close"),
    path("tokens/", views.ApiTokenList.as_view(), name="api-token-list"),
    path("tokens/<str:key>/", views.ApiTokenRevoke.as_view(), name="api-token-revoke"),
]
