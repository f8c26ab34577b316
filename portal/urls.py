from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django_otp.admin import OTPAdminSite
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from changes import calendar_views
from deployments import release_views
from deployments import views as deployment_views
from portal.api import errors
from portal.views import account, pages, people, sso

# The admin site asks for a verified second factor too; rights there come from break-glass.
admin.site.__class__ = OTPAdminSite

urlpatterns = [
    path("", pages.home, name="home"),
    path("audit/", pages.audit_list, name="audit-list"),
    path("changes/", include("changes.urls")),
    path("calendar/", calendar_views.calendar_page, name="calendar"),
    path("calendar/<slug:name>.ics", calendar_views.calendar_feed, name="calendar-feed"),
    path("environments/", include("deployments.urls")),
    path("changes/<int:pk>/deploy/", deployment_views.change_deploy, name="change-deploy"),
    path("deployments/<int:pk>/", deployment_views.deployment_detail, name="deployment-detail"),
    path("deployments/<int:pk>/report/", deployment_views.deployment_report, name="deployment-report"),
    path(
        "deployments/<int:pk>/<slug:action>/",
        deployment_views.deployment_control,
        name="deployment-control",
    ),
    path("releases/", release_views.release_list, name="release-list"),
    path("incidents/", include("incidents.urls")),
    path("status/", include("incidents.status_urls")),
    path("releases/<int:pk>/rollback/", release_views.release_rollback, name="release-rollback"),
    path("notifications/", pages.notification_list, name="notification-list"),
    path("notifications/test/", pages.notification_test, name="notification-test"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("login/otp/", account.login_otp, name="login-otp"),
    path("login/sso/", sso.sso_begin, name="oidc_authentication_init"),
    path("login/sso/callback/", sso.sso_callback, name="oidc_authentication_callback"),
    path("account/mfa/", account.mfa_setup, name="mfa-setup"),
    path("account/mfa/backup-codes/", account.mfa_backup_codes, name="mfa-backup-codes"),
    path("account/tokens/", account.api_tokens, name="api-tokens"),
    path("account/tokens/<str:key>/revoke/", account.api_token_revoke, name="api-token-revoke-page"),
    path("people/", people.people, name="people"),
    path("people/<int:pk>/", people.person, name="person"),
    path("break-glass/", account.break_glass, name="break-glass"),
    path("break-glass/<int:pk>/close/", account.break_glass_close, name="break-glass-close"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("portal.api.urls")),
    path("api/v1/", include("changes.api.urls")),
    path("api/v1/", include("deployments.api.urls")),
    path("api/v1/", include("incidents.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Anything else under /api/ is a JSON 404, not an HTML page.
    re_path(r"^api/", errors.not_found),
]

handler403 = "portal.views.errors.forbidden"
handler404 = "portal.views.errors.not_found"
handler500 = "portal.views.errors.server_error"
