"""All SQL of the administration: accounts across users, overview counts and the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.db import newest_first
from pixelfleet.models import AdminAction, CreditEntry, Payment, Task, User


class AdminRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> AdminRepository:
        return cls(session)

    async def user(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id, populate_existing=True)

    async def users_page(
        self,
        *,
        email_part: str | None,
        role: str | None,
        active: bool | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[User]:
        """Newest first."""
        statement = select(User)
        if email_part:
            statement = statement.where(User.email.contains(email_part, autoescape=True))
        if role is not None:
            statement = statement.where(User.role == role)
        if active is not None:
            statement = statement.where(User.is_active.is_(active))
        statement = newest_first(statement, User.created_at, User.id, after, limit)
        return list((await self.session.scalars(statement)).all())

    async def set_active(self, user_id: uuid.UUID, active: bool) -> bool:
        """Switches the account on or off; False when it already was (nothing changed)."""
        result = await self.session.execute(
            update(User)
            .where(User.id == user_id, User.is_active.is_not(active))
            .values(is_active=active)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def tasks_page(
        self,
        *,
        status: str | None,
        user_id: uuid.UUID | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Task]:
        """Everyone's tasks, newest first."""
        statement = select(Task)
        if status is not None:
            statement = statement.where(Task.status == status)
        if user_id is not None:
            statement = statement.where(Task.user_id == user_id)
        statement = newest_first(statement, Task.created_at, Task.id, after, limit)
        return list((await self.session.scalars(statement)).all())

    async def tasks_by_status(self, user_id: uuid.UUID | None = None) -> dict[str, int]:
        statement = select(Task.status, func.count()).group_by(Task.status)
        if user_id is not None:
            statement = statement.where(Task.user_id == user_id)
        return {str(status): int(n) for status, n in (await self.session.execute(statement)).all()}

    async def user_counts(self) -> tuple[int, int, int]:
        """(accounts, active accounts, administrators)."""
        row = (
            await self.session.execute(
                select(
                    func.count(),
                    func.count().filter(User.is_active.is_(True)),
                    func.count().filter(User.role == "admin"),
                ).select_from(User)
            )
        ).one()
        return int(row[0]), int(row[1]), int(row[2])

    async def balances_total(self) -> int:
        return int(await self.session.scalar(select(func.coalesce(func.sum(User.balance), 0))) or 0)

    async def ledger_by_kind(self) -> dict[str, tuple[int, int]]:
        """kind: (entries, sum of their amounts)."""
        statement = select(
            CreditEntry.kind, func.count(), func.coalesce(func.sum(CreditEntry.amount), 0)
        ).group_by(CreditEntry.kind)
        return {
            str(kind): (int(n), int(total))
            for kind, n, total in (await self.session.execute(statement)).all()
        }

    async def payments_by_status(self) -> list[tuple[str, str, int, int, int]]:
        """(status, currency, payments, credits, amount) for each pair that has payments."""
        statement = select(
            Payment.status,
            Payment.currency,
            func.count(),
            func.coalesce(func.sum(Payment.credits), 0),
            func.coalesce(func.sum(Payment.amount), 0),
        ).group_by(Payment.status, Payment.currency)
        return [
            (str(status), str(currency), int(n), int(credits), int(amount))
            for status, currency, n, credits, amount in (await self.session.execute(statement))
        ]

    async def add_action(self, action: AdminAction) -> AdminAction:
        self.session.add(action)
        await self.session.flush()
        return action

    async def actions_page(
        self,
        *,
        action: str | None,
        target_user_id: uuid.UUID | None,
        before_id: int | None,
        limit: int,
    ) -> list[AdminAction]:
        """Newest first (the id grows with time)."""
        statement = select(AdminAction)
        if action is not None:
            statement = statement.where(AdminAction.action == action)
        if target_user_id is not None:
            statement = statement.where(AdminAction.target_user_id == target_user_id)
        if before_id is not None:
            statement = statement.where(AdminAction.id < before_id)
        statement = statement.order_by(AdminAction.id.desc()).limit(limit)
        return list((await self.session.scalars(statement)).all())

    async def count_actions(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(AdminAction)) or 0)
