"""All SQL about balances and the ledger. Balance changes are single conditional UPDATEs so that
concurrent debits can never take a balance below zero."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.models import CreditEntry, User


class CreditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> CreditRepository:
        return cls(session)

    async def change_balance(self, user_id: uuid.UUID, amount: int) -> int | None:
        """Adds `amount` (negative to take) unless the balance would go below zero.

        Returns the new balance, or None when the balance was too low."""
        statement = (
            update(User)
            .where(User.id == user_id, User.balance + amount >= 0)
            .values(balance=User.balance + amount)
            .returning(User.balance)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def balance(self, user_id: uuid.UUID, *, lock: bool = False) -> int:
        """The balance; with `lock`, held (FOR UPDATE) until the transaction ends."""
        statement = select(User.balance).where(User.id == user_id)
        if lock:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one()

    async def add_entry(self, entry: CreditEntry) -> CreditEntry:
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def entry_by_reference(self, reference: str) -> CreditEntry | None:
        return await self.session.scalar(
            select(CreditEntry).where(CreditEntry.reference == reference)
        )

    async def entries(
        self, user_id: uuid.UUID, *, before_id: int | None, limit: int
    ) -> list[CreditEntry]:
        statement = select(CreditEntry).where(CreditEntry.user_id == user_id)
        if before_id is not None:
            statement = statement.where(CreditEntry.id < before_id)
        statement = statement.order_by(CreditEntry.id.desc()).limit(limit)
        return list((await self.session.scalars(statement)).all())

    async def ledger_sum(self, user_id: uuid.UUID) -> int:
        total = await self.session.scalar(
            select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
                CreditEntry.user_id == user_id
            )
        )
        return int(total or 0)

    async def has_entry(self, task_id: uuid.UUID, kind: str) -> bool:
        found = await self.session.scalar(
            select(CreditEntry.id).where(CreditEntry.task_id == task_id, CreditEntry.kind == kind)
        )
        return found is not None

    async def balances_off_their_ledger(self) -> list[tuple[uuid.UUID, str, int, int]]:
        """(user id, email, balance, ledger sum) of every user whose balance is not the sum of
        their ledger, or is below zero; in one statement, so one snapshot of the data."""
        ledger = (
            select(CreditEntry.user_id, func.sum(CreditEntry.amount).label("total"))
            .group_by(CreditEntry.user_id)
            .subquery()
        )
        total = func.coalesce(ledger.c.total, 0)
        statement = (
            select(User.id, User.email, User.balance, total)
            .outerjoin(ledger, ledger.c.user_id == User.id)
            .where((User.balance != total) | (User.balance < 0))
            .order_by(User.email)
        )
        rows = (await self.session.execute(statement)).all()
        return [(row[0], str(row[1]), int(row[2]), int(row[3])) for row in rows]

    async def totals(self) -> tuple[int, int]:
        """(users, ledger entries)."""
        users = await self.session.scalar(select(func.count()).select_from(User))
        entries = await self.session.scalar(select(func.count()).select_from(CreditEntry))
        return int(users or 0), int(entries or 0)
