"""The credit ledger: balance equals the sum of the ledger, never negative, refunds once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from pixelfleet.context import ProcessContext
from pixelfleet.credits import service as credits
from pixelfleet.credits.errors import InsufficientCredits
from pixelfleet.credits.repository import CreditRepository
from pixelfleet.models import User
from tests.records import new_task, new_user

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

PASSWORD = "correct horse battery"


async def _balance_and_sum(ctx: ProcessContext, user_id: uuid.UUID) -> tuple[int, int]:
    async with ctx.sessions() as session:
        repo = CreditRepository.from_session(session)
        return await repo.balance(user_id), await repo.ledger_sum(user_id)


async def test_the_signup_grant_is_a_ledger_entry(ctx: ProcessContext) -> None:
    user_id = await new_user(ctx, 100)
    assert await _balance_and_sum(ctx, user_id) == (100, 100)


async def test_a_debit_larger_than_the_balance_is_refused_and_changes_nothing(
    ctx: ProcessContext,
) -> None:
    user_id = await new_user(ctx, 5)
    task_id = await new_task(ctx, user_id, 6)
    with pytest.raises(InsufficientCredits):
        async with ctx.sessions.begin() as session:
            await credits.debit_for_task(session, user_id, task_id, 6)
    assert await _balance_and_sum(ctx, user_id) == (5, 5)


async def test_concurrent_debits_never_take_the_balance_below_zero(ctx: ProcessContext) -> None:
    user_id = await new_user(ctx, 10)
    task_ids = [await new_task(ctx, user_id, 1) for _ in range(25)]

    async def debit(task_id: uuid.UUID) -> bool:
        try:
            async with ctx.sessions.begin() as session:
                await credits.debit_for_task(session, user_id, task_id, 1)
            return True
        except InsufficientCredits:
            return False

    results = await asyncio.gather(*(debit(task_id) for task_id in task_ids))
    assert sum(results) == 10
    assert await _balance_and_sum(ctx, user_id) == (0, 0)


async def test_a_task_is_refunded_at_most_once_even_when_refunds_race(
    ctx: ProcessContext,
) -> None:
    user_id = await new_user(ctx, 10)
    task_id = await new_task(ctx, user_id, 4)
    async with ctx.sessions.begin() as session:
        await credits.debit_for_task(session, user_id, task_id, 4)

    async def refund() -> bool:
        async with ctx.sessions.begin() as session:
            return await credits.refund_task(session, user_id, task_id, 4, "test")

    results = await asyncio.gather(*(refund() for _ in range(8)))
    assert sum(results) == 1
    assert await _balance_and_sum(ctx, user_id) == (10, 10)


async def test_the_database_itself_refuses_a_negative_balance(ctx: ProcessContext) -> None:
    from sqlalchemy.exc import IntegrityError

    user_id = await new_user(ctx, 1)
    async with ctx.sessions() as session:
        user = await session.scalar(select(User).where(User.id == user_id))
        assert user is not None
        user.balance = -1
        with pytest.raises(IntegrityError):
            await session.commit()
