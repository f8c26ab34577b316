"""The Django admin, for an administrator inside break-glass with a verified second factor: it
reads everything and writes only through audited services (roles.admin_may). Signing in is the
portal's own (password, code, lockout, audit): the admin has no sign-in form of its own."""

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.shortcuts import redirect
from django.urls import reverse
from django_otp.admin import OTPAdminSite

from portal.models import AuditEvent, Notification, User


class GreenlightAdminSite(OTPAdminSite):
    """Django's admin site, asking a verified second factor (django-otp) and sending whoever is
    not signed in to the portal's sign-in."""

    def login(self, request, extra_context=None):
        next_url = request.GET.get("next") or reverse("admin:index")
        return redirect(f"{reverse('login')}?{urlencode({'next': next_url})}")


@admin.register(User)
class GreenlightUserAdmin(UserAdmin):
    fieldsets = UserAdmin.fieldsets + (("Preferences", {"fields": ["time_zone"]}),)
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_active"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "actor_name", "action", "object_repr", "ip", "request_id"]
    list_filter = ["action"]
    search_fields = ["actor_name", "object_repr", "request_id", "object_id"]
    show_full_result_count = False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "channel", "recipient", "subject", "status", "attempts"]
    list_filter = ["channel", "status"]
