"""Inbound webhooks' deliveries, each acted on once by its own id."""

import logging
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from portal import clock
from portal.models import (
    InboundDelivery,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def inbound_once(*, source: str, delivery_id: str, kind: str) -> InboundDelivery | None:
    """Keeps an inbound delivery in the caller's transaction (so a delivery whose handling fails is
    not kept, and is acted on when sent again); None when it was received before."""
    try:
        with transaction.atomic():
            return InboundDelivery.objects.create(
                source=source, delivery_id=delivery_id, kind=kind[:100], received_at=clock.now()
            )
    except IntegrityError:
        return None
