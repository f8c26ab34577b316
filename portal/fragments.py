"""Rendered fragments remembered by everything they are drawn from.

A long list renders the same rows again and again while they do not change. Each row's HTML is
kept under a digest of the template's source, the viewer's time zone (times are shown in it) and
the values the caller says the row shows: the same inputs give the same HTML, so an entry is never
stale, only unused until it expires. A page of rows costs one cache read for all of them, and
only rows whose values changed are rendered.

A fragment must depend on nothing but those values: no request, no viewer, no CSRF token. A
single fragment (`render_one`), such as a form drawn from the query string, is kept the same way.
"""

import hashlib
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress

from django.core.cache import cache
from django.template.loader import get_template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from portal.generations import CACHE_ERRORS

TTL_SECONDS = 24 * 60 * 60


def render_each(
    template_name: str, name: str, items: Sequence, shows: Callable[[object], Iterable]
) -> list[SafeString]:
    """Each item drawn by `template_name` (with the item in the context as `name`); `shows(item)`
    lists every value the template reads from it."""
    template, prefix = _template(template_name)
    keys = [f"{prefix}:{_digest(shows(item))}" for item in items]
    found = {}
    with suppress(*CACHE_ERRORS):  # without the cache, every item is drawn
        found = cache.get_many(keys)
    drawn = {}
    for item, key in zip(items, keys, strict=True):
        if key not in found and key not in drawn:
            drawn[key] = template.render({name: item})
    if drawn:
        with suppress(*CACHE_ERRORS):
            cache.set_many(drawn, TTL_SECONDS)
    return [mark_safe(found[key] if key in found else drawn[key]) for key in keys]  # noqa: S308 (our own templates' output)


def render_one(template_name: str, context: dict, shows: Iterable, *, keep: bool = True) -> SafeString:
    """`template_name` drawn with `context`; `shows` lists every value it reads from it. Without
    `keep`, it is drawn anew and not kept."""
    template, prefix = _template(template_name)
    key = f"{prefix}:{_digest(shows)}"
    found = None
    if keep:
        with suppress(*CACHE_ERRORS):
            found = cache.get(key)
    if found is None:
        found = template.render(context)
        if keep:
            with suppress(*CACHE_ERRORS):
                cache.set(key, found, TTL_SECONDS)
    return mark_safe(found)  # noqa: S308 (our own templates' output)


def _template(template_name: str):
    """The template and the prefix of its fragments' keys: its source, so that a release with a
    changed template draws them anew, and the viewer's time zone."""
    template = get_template(template_name)
    source = _digest([template.template.source])
    return template, f"fragment:{source}:{timezone.get_current_timezone_name()}"


def _digest(values: Iterable) -> str:
    return hashlib.blake2b(repr(list(values)).encode(), digest_size=16).hexdigest()
