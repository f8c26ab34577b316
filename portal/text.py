"""Text the portal keeps and shows: how long each kind may be, and what a one-line name or title
may hold. Models and serializers use these, so a page and the API refuse the same input in the
same words."""

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# The longest free text of each kind, in characters; the refusal names the limit.
SHORT_TEXT = 5_000  # a note, a summary, a comment
LONG_TEXT = 20_000  # a description, a rollback plan, a post-mortem's part

# Characters that rewrite how a line reads without being seen: the bidirectional overrides and
# isolates (a "\u202e" turns "evil.exe" around), and the zero-width marks.
INVISIBLE = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)


@deconstructible
class SingleLineText:
    """A name or title shown on one line (pages, Slack, e-mail, the status page): no control
    characters (line breaks, escape sequences, bells) and no invisible bidirectional or zero-width
    marks that would make it read otherwise than it is."""

    message = "Use letters, digits, spaces and punctuation only: {what} is not allowed here."

    def __call__(self, value) -> None:
        for character in str(value):
            if character in INVISIBLE:
                what = f"the invisible character U+{ord(character):04X}"
            elif unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp"):
                what = f"the control character U+{ord(character):04X}"
            else:
                continue
            raise ValidationError(self.message.format(what=what), code="invalid")

    def __eq__(self, other) -> bool:
        return isinstance(other, SingleLineText)


@deconstructible
class TextLimit:
    """At most `limit` characters, for text a person writes where the portal may write more itself
    (a post-mortem's timeline, filled in from the incident's): the limit holds what comes in without
    promising it of what goes out."""

    def __init__(self, limit: int):
        self.limit = limit

    def __call__(self, value) -> None:
        if len(str(value)) > self.limit:
            raise ValidationError(
                f"Ensure this field has no more than {self.limit} characters (it has {len(str(value))}).",
                code="max_length",
            )

    def __eq__(self, other) -> bool:
        return isinstance(other, TextLimit) and other.limit == self.limit
