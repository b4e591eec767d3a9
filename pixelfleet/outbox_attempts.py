"""The attempts of an outbox row (a webhook delivery, a letter): each row is `pending` until it
settles, counts its `attempts`, and is due at `next_attempt_at`. An attempt is claimed before it
is made (counted, and not due again before a lease ends), and every change after the claim is
conditional on the attempt count as claimed, so that a sender whose lease ran out cannot
overwrite the outcome of the sender that took the row over."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.models import OutboundMail, WebhookDelivery

PENDING = "pending"

Outbox = type[WebhookDelivery] | type[OutboundMail]


async def claim_attempt(
    session: AsyncSession,
    outbox: Outbox,
    row_id: uuid.UUID,
    attempts: int,
    now: datetime,
    lease_until: datetime,
    **also: Any,
) -> bool:
    """Takes the next attempt of a due row (and sets `also`); False if another sender did."""
    outcome = await session.execute(
        update(outbox)
        .where(
            outbox.id == row_id,
            outbox.state == PENDING,
            outbox.attempts == attempts,
            outbox.next_attempt_at <= now,
        )
        .values(attempts=attempts + 1, next_attempt_at=lease_until, **also)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(outcome, "rowcount", 0))


async def settle_attempt(
    session: AsyncSession, outbox: Outbox, row_id: uuid.UUID, attempts: int, **values: Any
) -> bool:
    """Records an attempt's outcome on a pending row whose attempt count is still `attempts`."""
    outcome = await session.execute(
        update(outbox)
        .where(outbox.id == row_id, outbox.state == PENDING, outbox.attempts == attempts)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(outcome, "rowcount", 0))
