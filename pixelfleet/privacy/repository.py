"""All SQL about an account's data as a whole: read all of it at once (one statement per
table, whatever the account holds), and delete all of it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Delete, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.jobs.states import QUEUED, RUNNING
from pixelfleet.models import (
    AdminAction,
    ApiKey,
    Asset,
    CreditEntry,
    Derivative,
    IdempotencyKey,
    OutboundMail,
    PasswordReset,
    Payment,
    PaymentEvent,
    Preset,
    RefreshToken,
    Task,
    TaskOutput,
    Upload,
    User,
    WebhookDelivery,
)


class AccountDataRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> AccountDataRepository:
        return cls(session)

    # ---- Reading it all -------------------------------------------------------------------------

    async def ledger(self, user_id: uuid.UUID) -> Sequence[CreditEntry]:
        statement = select(CreditEntry).where(CreditEntry.user_id == user_id)
        return (await self.session.scalars(statement.order_by(CreditEntry.id))).all()

    async def payments(self, user_id: uuid.UUID) -> Sequence[Payment]:
        statement = select(Payment).where(Payment.user_id == user_id)
        ordered = statement.order_by(Payment.created_at, Payment.id)
        return (await self.session.scalars(ordered)).all()

    async def tasks(self, user_id: uuid.UUID) -> Sequence[Task]:
        """The account's tasks, oldest first, with their outputs (one more statement for all)."""
        statement = select(Task).where(Task.user_id == user_id)
        return (await self.session.scalars(statement.order_by(Task.created_at, Task.id))).all()

    async def webhook_deliveries(self, user_id: uuid.UUID) -> Sequence[WebhookDelivery]:
        statement = (
            select(WebhookDelivery)
            .join(Task, Task.id == WebhookDelivery.task_id)
            .where(Task.user_id == user_id)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        )
        return (await self.session.scalars(statement)).all()

    async def presets(self, user_id: uuid.UUID) -> Sequence[Preset]:
        statement = select(Preset).where(Preset.user_id == user_id).order_by(Preset.name)
        return (await self.session.scalars(statement)).all()

    async def assets(self, user_id: uuid.UUID) -> Sequence[Asset]:
        statement = select(Asset).where(Asset.user_id == user_id)
        return (await self.session.scalars(statement.order_by(Asset.created_at, Asset.id))).all()

    async def uploads(self, user_id: uuid.UUID) -> Sequence[Upload]:
        statement = select(Upload).where(Upload.user_id == user_id)
        return (await self.session.scalars(statement.order_by(Upload.created_at, Upload.id))).all()

    async def api_keys(self, user_id: uuid.UUID) -> Sequence[ApiKey]:
        statement = select(ApiKey).where(ApiKey.user_id == user_id)
        return (await self.session.scalars(statement.order_by(ApiKey.created_at, ApiKey.id))).all()

    # ---- Erasing it -----------------------------------------------------------------------------

    async def erased_at(self, user_id: uuid.UUID) -> datetime | None:
        return await self.session.scalar(select(User.erased_at).where(User.id == user_id))

    async def active_task_ids(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        active = Task.status.in_((QUEUED, RUNNING))
        statement = select(Task.id).where(Task.user_id == user_id, active)
        return list((await self.session.scalars(statement.order_by(Task.created_at))).all())

    async def task_ids(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        statement = select(Task.id).where(Task.user_id == user_id)
        return list((await self.session.scalars(statement)).all())

    async def stored_keys(self, user_id: uuid.UUID) -> set[str]:
        """Every stored file of the account: its tasks' sources and outputs (with their
        alternates), its assets, its uploads."""
        keys: set[str] = set()
        sources = select(Task.source_key).where(Task.user_id == user_id)
        keys.update((await self.session.scalars(sources)).all())
        outputs = await self.session.scalars(
            select(TaskOutput)
            .join(Task, Task.id == TaskOutput.task_id)
            .where(Task.user_id == user_id, TaskOutput.key.is_not(None))
        )
        for output in outputs:
            keys.update(output.stored_keys())
        keys.update(
            (await self.session.scalars(select(Asset.key).where(Asset.user_id == user_id))).all()
        )
        keys.update(
            (await self.session.scalars(select(Upload.key).where(Upload.user_id == user_id))).all()
        )
        return keys

    async def delete_rows(self, user_id: uuid.UUID) -> int:
        """Deletes every row of the account but its account row, its payments and its ledger
        lines (which lose their task). A task takes its outputs and webhook deliveries with it
        (ON DELETE CASCADE). Returns how many tasks were deleted."""
        deleted_tasks = 0
        statements: list[tuple[type[object], Delete]] = [
            (Derivative, delete(Derivative).where(Derivative.user_id == user_id)),
            (IdempotencyKey, delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id)),
            (Task, delete(Task).where(Task.user_id == user_id)),
            (Preset, delete(Preset).where(Preset.user_id == user_id)),
            (Asset, delete(Asset).where(Asset.user_id == user_id)),
            (Upload, delete(Upload).where(Upload.user_id == user_id)),
            (ApiKey, delete(ApiKey).where(ApiKey.user_id == user_id)),
            (RefreshToken, delete(RefreshToken).where(RefreshToken.user_id == user_id)),
            (PasswordReset, delete(PasswordReset).where(PasswordReset.user_id == user_id)),
            (OutboundMail, delete(OutboundMail).where(OutboundMail.user_id == user_id)),
        ]
        for table, statement in statements:
            result = await self.session.execute(
                statement.execution_options(synchronize_session=False)
            )
            if table is Task:
                deleted_tasks = int(result.rowcount)  # type: ignore[attr-defined]
        return deleted_tasks

    async def anonymise_user(
        self,
        user_id: uuid.UUID,
        *,
        email: str,
        password_hash: str,
        delivery_key_salt: str,
        now: datetime,
    ) -> None:
        """Keeps the account row for its payments and ledger, holding nothing of its person:
        another email, a password nothing matches, switched off, its secrets' salts new."""
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(
                email=email,
                password_hash=password_hash,
                role="user",
                is_active=False,
                email_verified_at=None,
                webhook_secret_salt=None,
                webhook_secret_previous_salt=None,
                webhook_secret_previous_until=None,
                delivery_key_salt=delivery_key_salt,
                erased_at=now,
            )
            .execution_options(synchronize_session=False)
        )

    async def scrub_payment_events(self, user_id: uuid.UUID) -> int:
        """The provider's webhook events of the account's payments keep what accounting
        needs (ids, amounts, states, times) and lose what names the payer (`PAYER_FIELDS`)."""
        orders = select(Payment.order_id).where(Payment.user_id == user_id)
        events = list(
            await self.session.scalars(
                select(PaymentEvent).where(PaymentEvent.order_id.in_(orders))
            )
        )
        for event in events:
            event.payload = _without_payer(event.payload)
        await self.session.flush()
        return len(events)

    async def anonymise_audit_rows(self, user_id: uuid.UUID, email: str) -> None:
        """The audit trail keeps the changes made to the account, under its new email."""
        await self.session.execute(
            update(AdminAction)
            .where(AdminAction.target_user_id == user_id)
            .values(target_email=email)
            .execution_options(synchronize_session=False)
        )


PAYER_FIELDS = frozenset(
    {"email", "contact", "vpa", "card", "card_id", "bank", "wallet", "notes", "acquirer_data",
     "customer_id", "token_id", "upi"}
)  # fmt: skip
"""What a Razorpay payment (or refund, or order) entity says of the person who paid."""


def _without_payer(value: Any) -> Any:
    """`value` (an event's JSON) with every payer field, at any depth, set to null."""
    if isinstance(value, dict):
        return {
            key: None if key in PAYER_FIELDS else _without_payer(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_payer(item) for item in value]
    return value
