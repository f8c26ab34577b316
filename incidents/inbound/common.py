"""What both inbound webhooks share: the refusal the sender is answered with, the outcome, and
the checks every message passes before anything is written."""

from collections.abc import Mapping
from dataclasses import dataclass

from portal.errors import Refusal


class Refused(Refusal):
    """The message is not taken: `status` (400 malformed, 401/403 not believed, 502 AWS did not
    answer, 503 not configured) and a sentence a person understands."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True)
class Outcome:
    """What a message did, as the sender is answered."""

    status: int
    detail: str


def refuse_nul(*, what: str, texts: Mapping[str, object]) -> None:
    """Refuses (400) a message with a NUL character in a text it brings: PostgreSQL keeps none in
    a text or JSON column, and neither AWS nor PagerDuty sends one."""
    named = [name for name, text in texts.items() if isinstance(text, str) and "\x00" in text]
    if named:
        raise Refused(
            400,
            f"{what} has a NUL character in {', '.join(named)}: the portal keeps no such text.",
            "invalid",
        )
