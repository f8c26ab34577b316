"""The repository's refusal of a step, in the change's words."""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from changes.services import ChangeError
from integrations.scm import ScmError

logger = logging.getLogger(__name__)


class RepositoryRefused(ChangeError):
    """The repository refused a step (409). `kind` says what went wrong; a step that failed on a
    rate limit or the network is worth retrying by itself, at `retry_at` when GitHub said when."""

    def __init__(self, message: str, refused: ScmError) -> None:
        super().__init__(message, conflict=True)
        self.kind, self.retry_at, self.transient = refused.kind, refused.retry_at, refused.transient

    @property
    def extra(self) -> dict[str, Any]:
        return {"kind": self.kind, "retry_at": self.retry_at.isoformat() if self.retry_at else None}


@contextmanager
def repository_says(what: str, *, keep: Callable[[str], None] | None = None) -> Iterator[None]:
    """Runs a step in the repository; its refusal becomes a RepositoryRefused that says `what`
    was refused, once `keep` has recorded the refusal's words (after the step's own transaction
    was rolled back)."""
    try:
        yield
    except ScmError as refused:
        if keep is not None:
            keep(str(refused))
        raise RepositoryRefused(f"{what}: {refused}", refused) from None
