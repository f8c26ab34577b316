from rest_framework import exceptions, pagination


class CursorRefused(exceptions.ValidationError):
    """A cursor the API did not make (tampered with, or from another filter)."""


class CursorPagination(pagination.CursorPagination):
    """Keyset pagination: steady cost on deep pages and no skipped rows while new ones arrive.

    A page size or a cursor that is not one the API takes is refused (400) rather than ignored."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        given = request.query_params.get(self.page_size_query_param)
        if given is None:
            return self.page_size
        if not given.isascii() or not given.isdigit() or not 1 <= int(given) <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: f"A whole number from 1 to {self.max_page_size}."}
            )
        return int(given)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise CursorRefused(
                {self.cursor_query_param: "Not a cursor of this list: follow a `next` or `previous` link."}
            ) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


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
    except (NotFound, exceptions.ValidationError):
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
