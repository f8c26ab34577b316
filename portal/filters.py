"""Filters of the audit trail, shared by the audit page and GET /api/v1/audit/."""

import django_filters
from django import forms
from django.db.models import Q

from portal.models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(
        method="filter_actor", label="Actor", help_text="A user id, or part of a name or username."
    )
    action = django_filters.CharFilter(
        field_name="action",
        lookup_expr="startswith",
        label="Action",
        help_text="An action, or its beginning: change_request matches change_request.approve.",
    )
    object_type = django_filters.CharFilter(
        field_name="object_type", label="Object type", help_text="e.g. changes.changerequest"
    )
    object_id = django_filters.CharFilter(field_name="object_id", label="Object id")
    request_id = django_filters.CharFilter(field_name="request_id", label="Request id")
    since = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="From",
        help_text="Date and time; without a zone it is read in your own time zone.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="lt",
        label="Until",
        help_text="Exclusive; without a zone it is read in your own time zone.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "object_type", "object_id", "request_id", "since", "until"]

    def filter_actor(self, queryset, name, value):
        value = value.strip()
        if value.isdigit():
            return queryset.filter(actor_id=int(value))
        return queryset.filter(Q(actor_name__icontains=value))
