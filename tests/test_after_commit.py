"""Work queued for after a commit (`db.after_commit`: a dispatch, an event, a webhook send) runs
only once its transaction has committed, run by the boundary that committed; never if the
transaction, or the savepoint it was queued in, rolls back; and a failure in it is logged
without undoing the commit or stopping the work queued after it. On both backends: this is
about transactions."""

from __future__ import annotations

import logging

import pytest

from pixelfleet.context import ProcessContext
from pixelfleet.db import AfterCommitWork, after_commit, unit_of_work
from pixelfleet.models import PaymentEvent

pytestmark = pytest.mark.both_backends


class Aborted(Exception):
    pass


def _event(event_id: str) -> PaymentEvent:
    return PaymentEvent(id=event_id, event="test.event", order_id=None, payload={})


async def _stored(ctx: ProcessContext, event_id: str) -> bool:
    """Whether another session sees the row (that is, whether its transaction committed)."""
    async with ctx.read_sessions() as session:
        return await session.get(PaymentEvent, event_id) is not None


async def test_work_runs_once_its_transaction_has_committed(ctx: ProcessContext) -> None:
    seen: list[tuple[str, bool]] = []

    def noting(name: str, event_id: str) -> AfterCommitWork:
        async def work(given: ProcessContext) -> None:
            assert given is ctx
            seen.append((name, await _stored(ctx, event_id)))

        return work

    async with unit_of_work(ctx) as session:
        session.add(_event("first"))
        await session.flush()
        after_commit(session, noting("first", "first"))
        after_commit(session, noting("second", "first"))
        assert seen == []
    assert seen == [("first", True), ("second", True)]


async def test_work_queued_in_a_transaction_that_rolls_back_never_runs(
    ctx: ProcessContext,
) -> None:
    ran: list[str] = []

    async def work(_ctx: ProcessContext) -> None:
        ran.append("ran")

    async def queue_then_fail() -> None:
        async with unit_of_work(ctx) as session:
            session.add(_event("undone"))
            await session.flush()
            after_commit(session, work)
            raise Aborted

    with pytest.raises(Aborted):
        await queue_then_fail()
    assert ran == []
    assert not await _stored(ctx, "undone")


async def test_work_queued_in_a_savepoint_that_rolls_back_never_runs(
    ctx: ProcessContext,
) -> None:
    ran: list[str] = []

    def noting(name: str) -> AfterCommitWork:
        async def work(_ctx: ProcessContext) -> None:
            ran.append(name)

        return work

    async with unit_of_work(ctx) as session:
        session.add(_event("kept"))
        await session.flush()
        after_commit(session, noting("outer"))

        async def in_a_savepoint_then_fail() -> None:
            async with session.begin_nested():
                after_commit(session, noting("rolled back"))
                raise Aborted

        with pytest.raises(Aborted):
            await in_a_savepoint_then_fail()
        async with session.begin_nested():
            after_commit(session, noting("released"))
    assert ran == ["outer", "released"]


async def test_failed_work_is_logged_and_neither_undoes_the_commit_nor_stops_the_rest(
    ctx: ProcessContext, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    async def broken(_ctx: ProcessContext) -> None:
        raise RuntimeError("the broker is away")

    async def after_it(_ctx: ProcessContext) -> None:
        ran.append("after it")

    with caplog.at_level(logging.ERROR, logger="pixelfleet.db"):
        async with unit_of_work(ctx) as session:
            session.add(_event("committed"))
            await session.flush()
            after_commit(session, broken)
            after_commit(session, after_it)
    assert await _stored(ctx, "committed")
    assert ran == ["after it"]
    [record] = [r for r in caplog.records if r.name == "pixelfleet.db"]
    assert "the commit stands" in record.getMessage()
    assert record.exc_info is not None
    assert "the broker is away" in str(record.exc_info[1])


async def test_work_is_refused_where_nobody_would_run_it(ctx: ProcessContext) -> None:
    """A session opened without a boundary that runs committed work would lose it silently."""

    async def work(_ctx: ProcessContext) -> None:
        return None

    async with ctx.sessions.begin() as session:
        with pytest.raises(RuntimeError, match="unit_of_work"):
            after_commit(session, work)
