"""How the outbox hands a message to its channel. The channels themselves (e-mail, Slack,
PagerDuty) are integrations (integrations.notify), registered here by config.wiring; a transport
answers whether it sent the message (False: the channel is not configured and it only logged it)
and raises one of the errors below when it could not."""

from collections.abc import Callable

from portal.errors import OutsideError


class DeliveryError(OutsideError):
    """The channel refused the message for good (a bad address, an unknown channel)."""


class TransientDeliveryError(DeliveryError):
    """The channel could not be reached just now; worth trying again."""

    def __init__(self, message: str):
        super().__init__(message, transient=True)


Transport = Callable[..., bool]  # (*, recipient, subject, body) -> delivered
_TRANSPORTS: dict[str, Transport] = {}


def transport_register(channel: str, transport: Transport) -> None:
    _TRANSPORTS[channel] = transport


def deliver(*, channel: str, recipient: str, subject: str, body: str) -> bool:
    """Sends the message. Returns False when the channel is not configured and it was only logged."""
    transport = _TRANSPORTS.get(channel)
    if transport is None:
        raise DeliveryError(f"unknown channel {channel!r}")
    return transport(recipient=recipient, subject=subject, body=body)
