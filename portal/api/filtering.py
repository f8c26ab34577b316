"""The API's filters (django-filter), strict about what they are given.

A page's filter form sends every field, empty ones included, and an empty field filters nothing.
An API call names only what it filters by: a date, a number or a choice given empty is a mistake
(a template left unfilled, say) and is refused rather than silently ignored. Text filters may be
empty, as a search box may.
"""

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions


class FilterBackend(DjangoFilterBackend):
    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        for name, given in filterset.filters.items():
            if isinstance(given, django_filters.CharFilter):
                continue
            values = request.query_params.getlist(name)
            if values and any(value == "" for value in values):
                raise exceptions.ValidationError({name: "Give a value, or leave the parameter out."})
        return filterset
