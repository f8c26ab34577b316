from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Keyset pagination: steady cost on deep pages and no skipped rows while new ones arrive."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500


def page_of(request, queryset, *, page_size: int | None = None) -> dict | None:
    """A page of rows for an HTML list: {"rows", "next_url", "previous_url"}, keyset-paginated like
    the API. None when the cursor is not one we made (tampered with, or from another filter)."""
    from rest_framework.exceptions import NotFound
    from rest_framework.request import Request

    paginator = CursorPagination()
    if page_size:
        paginator.page_size = page_size
    try:
        rows = list(paginator.paginate_queryset(queryset, Request(request)))
    except NotFound:
        return None
    return {
        "rows": rows,
        "next_url": paginator.get_next_link() if rows else None,
        "previous_url": paginator.get_previous_link() if rows else None,
    }


def without_cursor(request) -> str:
    """The page's address again, from its first page."""
    query = request.GET.copy()
    query.pop("cursor", None)
    return f"{request.path}?{query.urlencode()}" if query else request.path
