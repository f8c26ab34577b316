"""Filters of the change list, shared by the page and GET /api/v1/changes/."""

import django_filters
from django import forms
from django.db.models import Q

from catalogue.models import Environment, Service
from changes.choices import ChangeStatus, ChangeType
from changes.models import ChangeRequest
from changes.snapshots import CATALOGUE
from portal import generations
from portal.models import User

CHOICES_TTL_SECONDS = 300


def _environment_choices() -> list[tuple[str, str]]:
    def read():
        return [
            (name, shown or name) for name, shown in Environment.objects.values_list("name", "display_name")
        ]

    return generations.remembered("choices:environments", [CATALOGUE], read, CHOICES_TTL_SECONDS)


def _service_choices() -> list[tuple[str, str]]:
    def read():
        return list(Service.objects.values_list("name", "name"))

    return generations.remembered("choices:services", [CATALOGUE], read, CHOICES_TTL_SECONDS)


class ChangeRequestFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search", help_text="Number, title or description.")
    status = django_filters.MultipleChoiceFilter(choices=ChangeStatus.choices)
    change_type = django_filters.ChoiceFilter(choices=ChangeType.choices, label="Type")
    # Choices by name from a plain query, kept in the cache until the catalogue is written to (a
    # model choice would read it through a server-side cursor: four round trips for a few rows).
    environment = django_filters.ChoiceFilter(
        field_name="environment__name", choices=_environment_choices, label="Environment"
    )
    service = django_filters.ChoiceFilter(
        field_name="services__name", choices=_service_choices, label="Service"
    )
    requester = django_filters.ModelChoiceFilter(
        queryset=User.objects.all(),
        to_field_name="username",
        label="Requester",
        help_text="A username.",
        widget=forms.TextInput,
    )
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="Created from",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="lt",
        label="Created until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    class Meta:
        model = ChangeRequest
        fields = ["q", "status", "change_type", "environment", "service", "requester"]

    def search(self, queryset, name, value):
        value = value.strip()
        pk = ChangeRequest.pk_from_number(value)
        match = Q(title__icontains=value) | Q(description__icontains=value)
        if pk is not None:
            match |= Q(pk=pk)
        return queryset.filter(match)
