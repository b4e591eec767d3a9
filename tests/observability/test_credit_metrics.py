"""pixelfleet_credits_total counts the credits of committed ledger entries, by kind, as positive
amounts: what a rollback (of a transaction or of a savepoint) undid is never counted."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from pixelfleet.context import ProcessContext
from pixelfleet.credits import service as credits
from pixelfleet.credits.errors import InsufficientCredits
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import sign_up, submit, truncated_jpeg
from tests.records import new_task, new_user

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

KINDS = ("grant", "admin_adjust", "task_debit", "task_refund", "purchase", "purchase_reversal")


class Aborted(Exception):
    """Raised by a test to roll its transaction back."""


def _counts() -> dict[str, float]:
    return {
        kind: REGISTRY.get_sample_value("pixelfleet_credits_total", {"kind": kind}) or 0.0
        for kind in KINDS
    }


def _moved(before: dict[str, float]) -> dict[str, float]:
    """What each kind moved since `before`, leaving out the kinds that did not move."""
    after = _counts()
    return {kind: after[kind] - before[kind] for kind in KINDS if after[kind] != before[kind]}


async def test_tasks_count_their_debits_and_the_refunds_of_those_that_failed(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "ledger-metrics@example.com")
    before = _counts()
    ok = [
        (await submit(client, headers, {"operations": [{"op": "flip"}]})).json() for _ in range(2)
    ]
    broken = (await submit(client, headers, {}, truncated_jpeg())).json()
    assert await drain_queue(ctx) == ["succeeded", "succeeded", "failed"]

    debited = sum(task["cost"] for task in ok) + broken["cost"]
    assert _moved(before) == {"task_debit": debited, "task_refund": broken["cost"]}


async def test_a_signup_grant_and_an_admin_adjustment_count_by_kind(ctx: ProcessContext) -> None:
    before = _counts()
    user_id = await new_user(ctx, credits_at_signup=40)
    async with ctx.sessions.begin() as session:
        await credits.grant(session, user_id, 3, kind="admin_adjust")
    assert _moved(before) == {"grant": 40, "admin_adjust": 3}


async def test_a_rolled_back_transaction_counts_none_of_its_entries(ctx: ProcessContext) -> None:
    user_id = await new_user(ctx)
    task_id = await new_task(ctx, user_id, 9)
    before = _counts()

    async def grant_and_debit_then_fail() -> None:
        async with ctx.sessions.begin() as session:
            await credits.grant(session, user_id, 5, kind="admin_adjust")
            await credits.debit_for_task(session, user_id, task_id, 9)
            raise Aborted

    with pytest.raises(Aborted):
        await grant_and_debit_then_fail()
    assert _moved(before) == {}


async def test_a_refused_debit_counts_nothing(ctx: ProcessContext) -> None:
    user_id = await new_user(ctx, credits_at_signup=2)
    task_id = await new_task(ctx, user_id, 3)
    before = _counts()
    with pytest.raises(InsufficientCredits):
        async with ctx.sessions.begin() as session:
            await credits.debit_for_task(session, user_id, task_id, 3)
    assert _moved(before) == {}


async def test_a_rolled_back_savepoint_leaves_out_only_its_own_entries(
    ctx: ProcessContext,
) -> None:
    user_id = await new_user(ctx)
    before = _counts()
    async with ctx.sessions.begin() as session:

        async def grant_in_a_savepoint_then_fail() -> None:
            async with session.begin_nested():
                await credits.grant(session, user_id, 11, kind="admin_adjust")
                raise Aborted

        await credits.grant(session, user_id, 7, kind="admin_adjust")
        with pytest.raises(Aborted):
            await grant_in_a_savepoint_then_fail()
        async with session.begin_nested():  # a savepoint released counts with the commit
            await credits.grant(session, user_id, 13, kind="admin_adjust")
        assert _moved(before) == {}  # nothing before the commit
    assert _moved(before) == {"admin_adjust": 7 + 13}


async def test_a_second_refund_of_a_task_is_refused_and_counted_once(ctx: ProcessContext) -> None:
    user_id = await new_user(ctx)
    task_id = await new_task(ctx, user_id, 4)
    async with ctx.sessions.begin() as session:
        await credits.debit_for_task(session, user_id, task_id, 4)
    before = _counts()
    async with ctx.sessions.begin() as session:
        assert await credits.refund_task(session, user_id, task_id, 4, "first")
        assert not await credits.refund_task(session, user_id, task_id, 4, "again")
    async with ctx.sessions.begin() as session:
        assert not await credits.refund_task(session, user_id, task_id, 4, "once more")
    assert _moved(before) == {"task_refund": 4}


async def test_a_savepoint_released_inside_a_rolled_back_transaction_counts_nothing(
    ctx: ProcessContext,
) -> None:
    user_id = await new_user(ctx)
    before = _counts()

    async def grant_in_a_released_savepoint_then_fail() -> None:
        async with ctx.sessions.begin() as session:
            async with session.begin_nested():
                await credits.grant(session, user_id, 5, kind="admin_adjust")
            raise Aborted

    with pytest.raises(Aborted):
        await grant_in_a_released_savepoint_then_fail()
    assert _moved(before) == {}


async def test_entries_of_a_session_closed_without_commit_never_count(
    ctx: ProcessContext,
) -> None:
    user_id = await new_user(ctx)
    before = _counts()
    async with ctx.sessions() as session:
        await credits.grant(session, user_id, 5, kind="admin_adjust")
        await session.close()  # no commit: the transaction ends unfinished
        await credits.grant(session, user_id, 2, kind="admin_adjust")
        await session.commit()
    assert _moved(before) == {"admin_adjust": 2}
