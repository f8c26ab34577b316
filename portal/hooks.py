"""Named hooks: how a lower layer has something happen in a higher one without importing it.

A hook is declared here with what it passes; the layer below calls it; its subscribers are listed
in one place, config.wiring, at start-up. Subscribers run synchronously, in the caller's
transaction and in the order listed, and what one raises stops the caller's act as the caller's
own code would (a refusal refuses, an error rolls the transaction back). Unlike a Django signal, a
hook has one declaration, one call site per cause and one list of subscribers a reader can find.
"""

from collections.abc import Callable
from typing import Any


class HookUnanswered(RuntimeError):
    """A required hook was sent with no subscriber connected."""


class Hook:
    """One named cause, and the subscribers that act on it."""

    def __init__(self, name: str, doc: str, *, required: bool = False):
        self.name, self.__doc__, self.required = name, doc, required
        self._subscribers: list[Callable[..., Any]] = []

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {len(self._subscribers)} subscribers>"

    def connect(self, subscriber: Callable[..., Any]) -> None:
        if subscriber not in self._subscribers:
            self._subscribers.append(subscriber)

    def send(self, **kwargs: Any) -> list[Any]:
        """Calls every subscriber with the hook's keyword arguments; their answers, in order. A
        required hook (a gate) with nobody to answer it refuses, rather than let the act through."""
        if self.required and not self._subscribers:
            raise HookUnanswered(f"{self.name} has no subscriber: the wiring (config.wiring) is incomplete.")
        return [subscriber(**kwargs) for subscriber in self._subscribers]


environment_panels = Hook(
    "environment_panels",
    "An environment's card on the environments page is drawn (environment=): each subscriber "
    "answers a panel to add, {'template': ..., **context}, or None.",
)

change_fixes_forward = Hook(
    "change_fixes_forward",
    "A change was filed, or edited, to fix forward the code of a rolled-back change (change=, "
    "actor=; change.fixes_forward is that change), in the writer's transaction.",
)
change_filed = Hook(
    "change_filed",
    "A change was filed (change=, actor=), in the filing transaction.",
)
deployment_rolled_back = Hook(
    "deployment_rolled_back",
    "A deployment rolled back by itself after taking traffic (deployment=), in the engine's "
    "transaction: each subscriber answers a sentence for the deployment's note, or None.",
)
change_page = Hook(
    "change_page",
    "A change's page is drawn (change=, user=, gates=): each subscriber answers entries for the "
    "page's context (deployments, the custody its latest one checked, the Deploy panel).",
)
emergency_grounds = Hook(
    "emergency_grounds",
    "An emergency change is filed, or its lane re-checked after an edit (incident=, requester=, "
    "environment=): a subscriber raises a refusal when the incident does not open the lane.",
    required=True,
)
