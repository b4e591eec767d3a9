"""Handing queued (and requeued) tasks to the workers once the transaction that queued them
commits, and telling a worker that the task it runs was cancelled.

A worker may only hear of a task once its row is stored, so the dispatch is queued on the
caller's session (`db.after_commit`) and sent by the boundary that commits; dropped if the
transaction rolls back. The database row is the outbox: a dispatch that fails (the broker or the
cluster is away) leaves the task queued, and the re-dispatch job hands it out later."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.db import after_commit
from pixelfleet.launchers import DispatchFailed
from pixelfleet.models import Task

if TYPE_CHECKING:
    from pixelfleet.context import ProcessContext

log = logging.getLogger(__name__)


class Dispatches:
    """What a queued dispatch did, read once the commit's work has run."""

    def __init__(self) -> None:
        self.sent = 0


def dispatch_after_commit(session: AsyncSession, tasks: Sequence[Task]) -> Dispatches:
    """Dispatches `tasks`, in order, once the session's transaction commits. The first refusal
    stops the rest (the launcher is away: they stay queued for the re-dispatch job)."""
    done = Dispatches()

    async def dispatch(ctx: ProcessContext) -> None:
        for task in tasks:
            try:
                await ctx.launcher.dispatch(task)
            except DispatchFailed:
                log.warning(
                    "task %s accepted but not dispatched yet; the re-dispatch job will send it",
                    task.id,
                    exc_info=True,
                )
                return
            done.sent += 1

    if tasks:
        after_commit(session, dispatch)
    return done


def held_after_commit(session: AsyncSession, task: Task) -> None:
    """Tells the launcher, once the session's transaction commits, that `task` waits its turn
    (fair sharing) rather than going to the workers now."""

    async def held(ctx: ProcessContext) -> None:
        await ctx.launcher.held(task)

    after_commit(session, held)


def requeued_after_commit(session: AsyncSession, tasks: Sequence[Task]) -> None:
    """Tells the launcher, once the session's transaction commits, that `tasks` are queued
    again (the embedded workers' doorbell rings, so an idle one runs them at once)."""

    async def requeued(ctx: ProcessContext) -> None:
        for task in tasks:
            await ctx.launcher.requeued(task)

    if tasks:
        after_commit(session, requeued)


def dropped_after_commit(session: AsyncSession, task: Task) -> None:
    """Tells the launcher, once the session's transaction commits, that `task` was cancelled
    before it started (Celery revokes its message)."""

    async def dropped(ctx: ProcessContext) -> None:
        await ctx.launcher.dropped(task)

    after_commit(session, dropped)


def withdrawn_after_commit(session: AsyncSession, task: Task) -> None:
    """Tells the launcher, once the session's transaction commits, that `task` was cancelled
    while it ran (an embedded worker's doorbell rings, so it stops the run at once)."""

    async def withdrawn(ctx: ProcessContext) -> None:
        await ctx.launcher.withdrawn(task)

    after_commit(session, withdrawn)
