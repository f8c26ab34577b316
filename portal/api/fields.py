"""Fields the whole API shares: the dates it takes, and times of day without an offset."""

from datetime import UTC, datetime, time, timedelta

from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# The dates the API takes: none before the year 2000 (nothing the portal tracks happened then),
# none more than ten years ahead (a typo, or a "never" that breaks every sum of dates).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
YEARS_AHEAD = 10


def latest() -> datetime:
    from portal import clock

    return clock.now() + timedelta(days=365 * YEARS_AHEAD)


def instant_problem(value: datetime) -> str | None:
    """Why an instant is refused, or None: it must lie between 2000 and ten years from now."""
    try:
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        moment = None
    if moment is None or moment < EARLIEST or moment > latest():
        return f"Give a date between 2000-01-01 and {latest():%Y-%m-%d}."
    return None


@extend_schema_field(OpenApiTypes.DATETIME)
class DateTimeField(serializers.DateTimeField):
    """DRF's date and time, held between 2000 and ten years from now."""

    def to_internal_value(self, value):
        try:
            moment = super().to_internal_value(value)
        except OverflowError:  # a date at the very edge of the calendar, in another zone
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss][+HH:MM|-HH:MM|Z]")
        if problem := instant_problem(moment):
            raise serializers.ValidationError(problem)
        return moment


@extend_schema_field({"type": "string", "format": "partial-time", "example": "02:00:00"})
class LocalTimeField(serializers.TimeField):
    """A time of day on an environment's own clock: an offset would say another clock, so it is
    refused rather than dropped."""

    default_error_messages = {
        "offset": "Give the time on the environment's clock without an offset, such as 02:00; "
        "the environment's time zone places it.",
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = time.fromisoformat(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is not None:
                self.fail("offset")
        return super().to_internal_value(value)


class CharField(serializers.CharField):
    """DRF's text field, taking text only: a number or a boolean where text belongs is a mistake
    in the caller, refused rather than turned into "0"."""

    default_error_messages = {"not_text": "Give text (a JSON string) here."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text")
        return super().to_internal_value(data)


class TextOnly:
    """A ModelSerializer whose text fields (from the model's CharField and TextField) take text only."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: CharField,
        models.TextField: CharField,
    }
