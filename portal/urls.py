"""The kernel's pages: signing in and the second factor, tokens, people, break-glass, the audit
trail and notifications."""

from django.contrib.auth import views as auth_views
from django.urls import path

from portal.views import account, pages, people, sso

urlpatterns = [
    path("audit/", pages.audit_list, name="audit-list"),
    path("notifications/", pages.notification_list, name="notification-list"),
    path("notifications/test/", pages.notification_test, name="notification-test"),
    path("login/", account.SignInView.as_view(), name="login"),
    path("login/otp/", account.login_otp, name="login-otp"),
    path("login/sso/", sso.sso_begin, name="oidc_authentication_init"),
    path("login/sso/callback/", sso.sso_callback, name="oidc_authentication_callback"),
    path("account/mfa/", account.mfa_setup, name="mfa-setup"),
    path("account/mfa/backup-codes/", account.mfa_backup_codes, name="mfa-backup-codes"),
    path("account/password/", account.password_change, name="password-change"),
    path("password-reset/", account.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        account.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("account/tokens/", account.api_tokens, name="api-tokens"),
    path("account/tokens/<str:key>/revoke/", account.api_token_revoke, name="api-token-revoke-page"),
    path("people/", people.people, name="people"),
    path("people/<int:pk>/", people.person, name="person"),
    path("break-glass/", account.break_glass, name="break-glass"),
    path("break-glass/<int:pk>/close/", account.break_glass_close, name="break-glass-close"),
    path("logout/", account.SignOutView.as_view(), name="logout"),
]
