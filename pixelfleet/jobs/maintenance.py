"""Scheduled upkeep: recover tasks whose worker vanished, delete expired files."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pixelfleet.accounts import service as accounts
from pixelfleet.context import ProcessContext
from pixelfleet.credits import service as credits
from pixelfleet.db import utcnow
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.jobs.states import RUNNING

log = logging.getLogger(__name__)


async def recover_stale_tasks(
    ctx: ProcessContext,
    *,
    stale_before: datetime | None = None,
    worker_prefix: str | None = None,
) -> int:
    """Requeues running tasks whose worker stopped reporting (only workers whose name starts
    with `worker_prefix`, when given); fails and refunds those that already used all their
    attempts. Returns how many tasks it touched."""
    now = utcnow()
    cutoff = stale_before or now - timedelta(seconds=ctx.settings.task_stale_seconds)
    touched = 0
    async with ctx.sessions.begin() as session:
        repo = TaskRepository.from_session(session)
        for task in await repo.running_with_heartbeat_before(cutoff, worker_prefix):
            if task.attempts >= ctx.settings.task_max_attempts:
                if await repo.mark_failed(
                    task.id,
                    {RUNNING},
                    "worker-lost",
                    f"The worker stopped during each of {task.attempts} attempts.",
                    now,
                    now + ctx.retention,
                    worker=task.worker,
                    silent_since=cutoff,
                ):
                    await credits.refund_task(
                        session, task.user_id, task.id, task.cost, "failed: worker-lost"
                    )
                    touched += 1
            elif await repo.requeue(task.id, task.worker, now, silent_since=cutoff):
                touched += 1
    if touched:
        log.warning("recovered %d task(s) from stopped workers", touched)
    return touched


async def purge_expired_files(ctx: ProcessContext, *, batch: int = 200) -> int:
    """Deletes the uploads and results of tasks past their retention time."""
    now = utcnow()
    async with ctx.sessions.begin() as session:
        repo = TaskRepository.from_session(session)
        expired = await repo.expired_unpurged(now, batch)
        for task in expired:
            await ctx.storage.delete(task.source_key)
            for output in task.outputs:
                if output.key is not None:
                    await ctx.storage.delete(output.key)
            await repo.mark_files_purged(task.id, now)
    return len(expired)


async def forget_expired_logins(ctx: ProcessContext) -> int:
    async with ctx.sessions.begin() as session:
        return await accounts.forget_expired_refresh_tokens(session)
