"""One error shape for the whole API: {"detail": "...", "code": "..."}.

Validation errors keep their per-field messages under "errors" and sum them up in "detail", so a
person reading the response, or a CI log, sees what to fix without digging.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from portal.errors import Refusal


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def exception_handler(exc, context):
    extra = {}
    if isinstance(exc, Refusal):
        # A rule a service enforced: 409 when it clashes with the object's current state, 400
        # otherwise; the message is the service's own, with what it adds (such as the next slot).
        message = " ".join(exc.messages)
        extra = exc.extra
        exc = Conflict(message) if exc.conflict else exceptions.ValidationError(message)
    elif isinstance(exc, DjangoValidationError):  # a model's own validation
        exc = exceptions.ValidationError(" ".join(exc.messages))
    elif isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = TooLarge(f"The request body is larger than the {limit // 1024:,} KB the API takes.")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) if str(exc) else None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    from portal.api.authentication import TokenRefused

    if isinstance(exc, TokenRefused):
        response.status_code = status.HTTP_401_UNAUTHORIZED
        response["WWW-Authenticate"] = "Token"
    if isinstance(exc, exceptions.Throttled) and exc.wait is None:
        # A lockout says in words when it ends; a client reads the longest it may last.
        response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "detail": validation_summary(exc.detail),
            "code": "invalid",
            "errors": exc.detail,
        }
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = {"detail": str(detail), "code": code}
    response.data.update(extra)
    return response


def validation_summary(detail, prefix: str = "") -> str:
    """'title: This field is required. otp: Enter the 6-digit code.'"""
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            label = "" if field == "non_field_errors" else f"{prefix}{field}"
            parts.append(validation_summary(value, f"{label}." if label else ""))
        return " ".join(part for part in parts if part)
    if isinstance(detail, list):
        messages = [validation_summary(item, prefix) for item in detail]
        return " ".join(message for message in messages if message)
    label = prefix.rstrip(".")
    return f"{label}: {detail}" if label else str(detail)


def json_error(status_code: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status_code)


def not_found(request, exception=None) -> JsonResponse:
    return json_error(status.HTTP_404_NOT_FOUND, f"No API endpoint at {request.path}.", "not_found")


def server_error(request) -> JsonResponse:
    return json_error(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        "The server failed to handle this request; it has been logged with its request id.",
        "server_error",
    )
