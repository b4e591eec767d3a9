"""All SQL about payments, their refunds and webhook events. A payment changes state by
conditional UPDATEs, so of two deliveries racing to mark it paid exactly one wins (and only the
winner grants)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.db import advisory_xact_lock, newest_first
from pixelfleet.models import Payment, PaymentEvent, PaymentRefund

CREATED = "created"
PAID = "paid"
FAILED = "failed"
PARTIALLY_REFUNDED = "partially_refunded"
REFUNDED = "refunded"

PAYABLE = (CREATED, FAILED)  # a failed attempt does not close the order: it may still be paid
SETTLED = (PAID, PARTIALLY_REFUNDED, REFUNDED)


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> PaymentRepository:
        return cls(session)

    async def add(self, payment: Payment) -> Payment:
        self.session.add(payment)
        await self.session.flush()
        return payment

    async def by_order_id(self, order_id: str, *, lock: bool = False) -> Payment | None:
        statement = select(Payment).where(Payment.order_id == order_id)
        if lock:
            statement = statement.with_for_update()
        return await self.session.scalar(statement.execution_options(populate_existing=True))

    async def by_provider_payment_id(
        self, payment_id: str, *, lock: bool = False
    ) -> Payment | None:
        statement = select(Payment).where(Payment.payment_id == payment_id)
        if lock:
            statement = statement.with_for_update()
        return await self.session.scalar(statement.execution_options(populate_existing=True))

    async def lock_provider_payment(self, provider_payment_id: str) -> None:
        """Serialises, until the transaction ends, every transaction that grants or refunds the
        Razorpay payment `provider_payment_id`, including those that cannot lock its row yet (a
        refund arriving before the capture finds no paid payment to lock). Taken before the
        payment's row. On SQLite every write transaction holds the database's write lock."""
        digest = hashlib.sha256(b"razorpay-payment:" + provider_payment_id.encode()).digest()
        await advisory_xact_lock(self.session, int.from_bytes(digest[:8], "big", signed=True))

    async def by_idempotency_key(self, user_id: uuid.UUID, key: str) -> Payment | None:
        return await self.session.scalar(
            select(Payment).where(Payment.user_id == user_id, Payment.idempotency_key == key)
        )

    async def get(self, payment_id: uuid.UUID) -> Payment | None:
        return await self.session.get(Payment, payment_id, populate_existing=True)

    async def page(
        self,
        user_id: uuid.UUID | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Payment]:
        statement = select(Payment)
        if user_id is not None:
            statement = statement.where(Payment.user_id == user_id)
        statement = newest_first(statement, Payment.created_at, Payment.id, after, limit)
        return list((await self.session.scalars(statement)).all())

    async def mark_paid(self, payment: Payment, provider_payment_id: str, now: datetime) -> bool:
        outcome = await self.session.execute(
            update(Payment)
            .where(Payment.id == payment.id, Payment.status.in_(PAYABLE))
            .values(status=PAID, payment_id=provider_payment_id, paid_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(outcome, "rowcount", 0))

    async def mark_failed(self, payment: Payment, reason: str, now: datetime) -> bool:
        outcome = await self.session.execute(
            update(Payment)
            .where(Payment.id == payment.id, Payment.status.in_(PAYABLE))
            .values(status=FAILED, failure_reason=reason[:2000], updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(outcome, "rowcount", 0))

    async def note_problem(self, payment: Payment, reason: str, now: datetime) -> None:
        await self.session.execute(
            update(Payment)
            .where(Payment.id == payment.id)
            .values(failure_reason=reason[:2000], updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def record_refund(
        self,
        payment: Payment,
        *,
        amount_refunded: int,
        credits_reversed: int,
        shortfall: int,
        status: str,
        now: datetime,
    ) -> bool:
        """Moves the refund totals forward from the values `payment` was read with."""
        outcome = await self.session.execute(
            update(Payment)
            .where(Payment.id == payment.id, Payment.credits_reversed == payment.credits_reversed)
            .values(
                amount_refunded=amount_refunded,
                credits_reversed=credits_reversed,
                credits_shortfall=Payment.credits_shortfall + shortfall,
                status=status,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(outcome, "rowcount", 0))

    async def add_refund(self, refund: PaymentRefund) -> bool:
        """Records a refund; False when one with its id is already recorded."""
        try:
            async with self.session.begin_nested():
                self.session.add(refund)
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    async def unapplied_refunds(self, provider_payment_id: str) -> list[PaymentRefund]:
        """The recorded refunds of a Razorpay payment whose credits were not taken back yet, in
        the order they arrived."""
        statement = (
            select(PaymentRefund)
            .where(
                PaymentRefund.payment_id == provider_payment_id,
                PaymentRefund.applied_at.is_(None),
            )
            .order_by(PaymentRefund.received_at, PaymentRefund.id)
        )
        return list((await self.session.scalars(statement)).all())

    async def mark_refund_applied(self, refund_id: str, now: datetime) -> None:
        await self.session.execute(
            update(PaymentRefund)
            .where(PaymentRefund.id == refund_id)
            .values(applied_at=now)
            .execution_options(synchronize_session=False)
        )

    async def add_event(self, event: PaymentEvent) -> bool:
        """Stores a webhook event; False when one with its id is already stored."""
        try:
            async with self.session.begin_nested():
                self.session.add(event)
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    async def set_event_outcome(self, event_id: str, outcome: str) -> None:
        await self.session.execute(
            update(PaymentEvent)
            .where(PaymentEvent.id == event_id)
            .values(outcome=outcome[:2000])
            .execution_options(synchronize_session=False)
        )

    async def event(self, event_id: str) -> PaymentEvent | None:
        return await self.session.get(PaymentEvent, event_id)

    @staticmethod
    def entity(document: dict[str, Any], name: str) -> dict[str, Any] | None:
        """`payload.<name>.entity` of a webhook document, if it is there and is an object."""
        payload = document.get("payload")
        holder = payload.get(name) if isinstance(payload, dict) else None
        entity = holder.get("entity") if isinstance(holder, dict) else None
        return entity if isinstance(entity, dict) else None
