"""The two kinds of error every layer raises, so each caller (the API's handler, a page, the
engine, a task's retry) reads one shape instead of guessing at attributes:

- a `Refusal`: a rule refused the act, in words a person acts on. `conflict` marks a clash with
  the current state of things (409) rather than a request to correct (400); `extra` is what the
  API's answer carries besides the words (the next free slot, every reason). A missing right is
  Django's PermissionDenied (403), never a refusal.
- an `OutsideError`: the outside world (GitHub, AWS, a deployer, a notification channel) failed
  or refused a call. `transient` says whether trying again by itself may work (the network,
  throttling), at `retry_at` when the outside said when.
"""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError


class Refusal(ValidationError):
    conflict: bool = False

    def __init__(self, message: str, *, conflict: bool | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        if conflict is not None:
            self.conflict = conflict
        self._extra = extra or {}

    @property
    def extra(self) -> dict[str, Any]:
        return self._extra


class OutsideError(Exception):
    def __init__(self, message: str, *, transient: bool = False, retry_at: datetime | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_at = retry_at
