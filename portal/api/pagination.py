from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Keyset pagination: steady cost on deep pages and no skipped rows while new ones arrive."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500
