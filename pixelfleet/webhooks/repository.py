"""All SQL about webhook deliveries (their attempts are claimed and settled as every outbox's:
`pixelfleet/outbox_attempts.py`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.db import newest_first
from pixelfleet.models import Task, User, WebhookDelivery
from pixelfleet.outbox_attempts import PENDING, claim_attempt, settle_attempt
from pixelfleet.webhooks.signing import SigningSalts

DELIVERED = "delivered"
FAILED = "failed"
REFUSED = "refused"


@dataclass(frozen=True)
class DueDelivery:
    """What a sender needs of one delivery, read before it is claimed."""

    id: uuid.UUID
    task_id: uuid.UUID
    user_id: uuid.UUID
    event: str
    url: str
    payload: dict[str, Any]
    attempts: int
    salts: SigningSalts  # the owner's, as they were when the delivery was read


class WebhookDeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> WebhookDeliveryRepository:
        return cls(session)

    async def exists(self, task_id: uuid.UUID, event: str) -> bool:
        found = await self.session.scalar(
            select(WebhookDelivery.id).where(
                WebhookDelivery.task_id == task_id, WebhookDelivery.event == event
            )
        )
        return found is not None

    async def add(self, delivery: WebhookDelivery) -> None:
        self.session.add(delivery)
        await self.session.flush()

    async def page_for_task(
        self, task_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[WebhookDelivery]:
        statement = newest_first(
            select(WebhookDelivery).where(WebhookDelivery.task_id == task_id),
            WebhookDelivery.created_at,
            WebhookDelivery.id,
            after,
            limit,
        )
        return list((await self.session.scalars(statement)).all())

    async def due(self, now: datetime, limit: int, task_id: uuid.UUID | None) -> list[DueDelivery]:
        statement = (
            select(
                WebhookDelivery,
                Task.user_id,
                User.webhook_secret_salt,
                User.webhook_secret_previous_salt,
                User.webhook_secret_previous_until,
            )
            .join(Task, Task.id == WebhookDelivery.task_id)
            .join(User, User.id == Task.user_id)
            .where(WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        if task_id is not None:
            statement = statement.where(WebhookDelivery.task_id == task_id)
        rows = (await self.session.execute(statement)).all()
        return [
            DueDelivery(
                d.id,
                d.task_id,
                user_id,
                d.event,
                d.url,
                d.payload,
                d.attempts,
                SigningSalts(salt, previous_salt, previous_until),
            )
            for d, user_id, salt, previous_salt, previous_until in rows
        ]

    async def _settle(self, delivery_id: uuid.UUID, attempts: int, **values: Any) -> bool:
        return await settle_attempt(self.session, WebhookDelivery, delivery_id, attempts, **values)

    async def claim(
        self, delivery_id: uuid.UUID, attempts: int, now: datetime, lease_until: datetime
    ) -> bool:
        """Takes the next attempt of a due delivery (`outbox_attempts.claim_attempt`)."""
        return await claim_attempt(
            self.session, WebhookDelivery, delivery_id, attempts, now, lease_until, updated_at=now
        )

    async def mark_delivered(
        self, delivery_id: uuid.UUID, attempts: int, status_code: int, now: datetime
    ) -> bool:
        return await self._settle(
            delivery_id,
            attempts,
            state=DELIVERED,
            last_status_code=status_code,
            last_error=None,
            next_attempt_at=None,
            delivered_at=now,
            updated_at=now,
        )

    async def schedule_retry(
        self,
        delivery_id: uuid.UUID,
        attempts: int,
        status_code: int | None,
        error: str,
        now: datetime,
        next_attempt_at: datetime,
    ) -> bool:
        return await self._settle(
            delivery_id,
            attempts,
            last_status_code=status_code,
            last_error=error,
            next_attempt_at=next_attempt_at,
            updated_at=now,
        )

    async def mark_given_up(
        self,
        delivery_id: uuid.UUID,
        attempts: int,
        state: str,
        status_code: int | None,
        error: str,
        now: datetime,
    ) -> bool:
        """Ends a delivery as `failed` (out of attempts) or `refused` (not a public target)."""
        return await self._settle(
            delivery_id,
            attempts,
            state=state,
            last_status_code=status_code,
            last_error=error,
            next_attempt_at=None,
            updated_at=now,
        )


class SigningSaltRepository:
    """The salts an account's webhook signing secrets are derived from (columns of `users`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> SigningSaltRepository:
        return cls(session)

    async def salts_of(self, user_id: uuid.UUID, *, lock: bool = False) -> SigningSalts:
        statement = select(
            User.webhook_secret_salt,
            User.webhook_secret_previous_salt,
            User.webhook_secret_previous_until,
        ).where(User.id == user_id)
        if lock:
            statement = statement.with_for_update()
        row = (await self.session.execute(statement)).one()
        return SigningSalts(row[0], row[1], row[2])

    async def replace(self, user_id: uuid.UUID, salts: SigningSalts) -> None:
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(
                webhook_secret_salt=salts.current,
                webhook_secret_previous_salt=salts.previous,
                webhook_secret_previous_until=salts.previous_until,
            )
            .execution_options(synchronize_session=False)
        )
