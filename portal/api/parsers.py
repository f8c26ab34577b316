"""What the API refuses before any view reads a request: text a database cannot keep, JSON nested
past reason, and an address or query string carrying either.

PostgreSQL keeps no NUL character in text, and a lone surrogate ("\\ud800", valid in JSON) is no
character at all; both would otherwise fail deep in a query as a server error. They are refused
here once, for every endpoint, as a 400 that says which part of the request holds them.
"""

from rest_framework import exceptions, parsers
from rest_framework.negotiation import DefaultContentNegotiation

# Deeper than any body the API takes (the deepest, a GitHub event, nests about six levels).
MAX_JSON_DEPTH = 64


def text_problem(value: str) -> str | None:
    """Why a piece of text cannot be kept, or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which text may not hold"
    if any("\ud800" <= character <= "\udfff" for character in value):
        return "contains an unpaired surrogate (such as \\ud800), which is not a character"
    return None


def _refuse_bad_text(document, where: str = "body") -> None:
    """Walks the parsed JSON (without recursion) and refuses bad text in keys and values, and
    nesting deeper than MAX_JSON_DEPTH."""
    stack = [(document, where, 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        if isinstance(value, str):
            if problem := text_problem(value):
                raise exceptions.ValidationError({path: f"This text {problem}."})
        elif isinstance(value, dict):
            for key, item in value.items():
                if problem := text_problem(key):
                    raise exceptions.ValidationError({path: f"A key {problem}."})
                stack.append((item, key if path == "body" else f"{path}.{key}", depth + 1))
        elif isinstance(value, list):
            stack.extend((item, path, depth + 1) for item in value)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a 400 for nesting that would exhaust Python's stack and for text a
    database cannot keep."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(
                f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels."
            ) from None
        _refuse_bad_text(document)
        return document


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _refuse_bad_text({key: data.getlist(key) for key in data})
        return data


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, which refuses a body it cannot read rather than reading it as an
    empty form (where every optional field would take its default)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        request = (parser_context or {}).get("request")
        sent = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if sent and not parsed.data and not parsed.files:
            raise exceptions.ParseError("Multipart form parse error - no field could be read from the body.")
        _refuse_bad_text({key: parsed.data.getlist(key) for key in parsed.data})
        return parsed


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, which is the first thing it does with every request: before
    choosing how to answer, the address and its query string are checked for text no view could
    look up (a 400, answered as JSON)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        if problem := text_problem(request.path):
            raise exceptions.ValidationError({"path": f"The address {problem}."})
        for name in request.query_params:
            if problem := text_problem(name):
                raise exceptions.ValidationError({name: f"A query parameter's name {problem}."})
            for value in request.query_params.getlist(name):
                if problem := text_problem(value):
                    raise exceptions.ValidationError({name: f"This query parameter {problem}."})
        return super().select_renderer(request, renderers, format_suffix)
