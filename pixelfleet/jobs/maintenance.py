"""Scheduled upkeep: hand out tasks again whose dispatch was lost, recover tasks whose worker
vanished or overran its hard limit, delete expired files.

Each sweep is its own unit of work (`db.unit_of_work`): it commits, then runs what its commit
queued (a re-dispatch, the events and webhook sends of the tasks it failed, which are settled by
`jobs.settlement` as any other end)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pixelfleet import orphaned_files
from pixelfleet.accounts import password_resets
from pixelfleet.accounts import service as accounts
from pixelfleet.context import ProcessContext
from pixelfleet.db import unit_of_work, utcnow
from pixelfleet.jobs import fair_dispatch
from pixelfleet.jobs.bounds import attempts_allowed, deadline_message
from pixelfleet.jobs.dispatching import dispatch_after_commit, requeued_after_commit
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.jobs.settlement import (
    settle_failed,
    settle_past_deadline,
    settle_worker_lost,
)
from pixelfleet.mail import outbox
from pixelfleet.uploads import service as uploads

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
    async with unit_of_work(ctx) as session:
        repo = TaskRepository.from_session(session)
        requeued = []
        for task in await repo.running_with_heartbeat_before(cutoff, worker_prefix):
            if task.attempts >= attempts_allowed(task.max_attempts, ctx.settings.task_max_attempts):
                lost = await settle_worker_lost(session, task, ctx.retention, silent_since=cutoff)
                if lost is not None:
                    touched += 1
            elif await repo.requeue(task.id, task.worker, now, silent_since=cutoff):
                requeued.append(task)
                touched += 1
        requeued_after_commit(session, requeued)
    if touched:
        log.warning("recovered %d task(s) from stopped workers", touched)
    return touched


async def redispatch_stale_tasks(ctx: ProcessContext, *, batch: int = 500) -> int:
    """Dispatches again the queued tasks nobody started within `redispatch_after_seconds` of
    their last dispatch: the database is the outbox, so a task whose message was lost (broker
    down, broker restarted empty, API stopped before it sent) is not lost. A second dispatch of
    a task that was merely slow to start is harmless: only one worker can claim it."""
    now = utcnow()
    cutoff = now - timedelta(seconds=ctx.settings.redispatch_after_seconds)
    async with unit_of_work(ctx) as session:
        repo = TaskRepository.from_session(session)
        stale = await repo.queued_dispatched_before(cutoff, batch)
        stamped = [task for task in stale if await repo.mark_dispatched(task.id, cutoff, now)]
        dispatches = dispatch_after_commit(session, stamped)
    if dispatches.sent:
        log.warning("re-dispatched %d queued task(s) nobody had started", dispatches.sent)
    # Tasks waiting their turn whose queue has room (a start's release was lost).
    await fair_dispatch.release_everywhere(ctx)
    return dispatches.sent


async def fail_overdue_tasks(ctx: ProcessContext, *, batch: int = 200) -> int:
    """Fails, and refunds, running tasks that started longer ago than the hard time limit (and
    a grace period) allows (their worker was killed by the limit or hangs), and queued or
    running tasks past their own deadline (a worker running one stops it at its next look)."""
    now = utcnow()
    grace = timedelta(seconds=ctx.settings.task_time_limit_seconds + 30)
    failed = 0
    async with unit_of_work(ctx) as session:
        repo = TaskRepository.from_session(session)
        for task in await repo.running_started_before(now - grace, batch):
            if await settle_failed(
                session,
                task.id,
                "time-limit",
                f"The task ran past its hard time limit of "
                f"{ctx.settings.task_time_limit_seconds:g} seconds.",
                ctx.retention,
                worker=task.worker,
            ) is not None:
                failed += 1
        for task in await repo.past_deadline(now, batch):
            assert task.deadline_at is not None
            message = deadline_message(task.deadline_at)
            if await settle_past_deadline(session, task.id, message, ctx.retention) is not None:
                failed += 1
    if failed:
        log.warning("failed %d task(s) past their time limit or deadline", failed)
    return failed


async def purge_expired_files(ctx: ProcessContext, *, batch: int = 200) -> int:
    """Deletes the sources and results of tasks past their retention time, the bytes of
    direct uploads past theirs, and the files whose rows are gone (`orphaned_files`). Returns
    how many tasks, uploads and orphaned files it purged."""
    now = utcnow()
    async with unit_of_work(ctx) as session:
        repo = TaskRepository.from_session(session)
        expired = await repo.expired_unpurged(now, batch)
        for task in expired:
            await ctx.storage.delete(task.source_key)
            for output in task.outputs:
                for key in output.stored_keys():
                    await ctx.storage.delete(key)
            await repo.mark_files_purged(task.id, now)
        uploads_purged = await uploads.purge_expired(session, ctx.storage, batch=batch)
    orphans_deleted = await orphaned_files.delete_orphaned_files(ctx)
    return len(expired) + uploads_purged + orphans_deleted


# How long a letter that went (or was given up) is kept after it was written: its address and
# subject, for an operator asked "was it sent?". Its bodies went when it settled.
SETTLED_MAIL_KEPT = timedelta(days=30)


async def forget_expired_logins(ctx: ProcessContext) -> int:
    """Forgets what no longer opens anything: refresh tokens and password reset links past
    their expiry, and letters settled longer ago than `SETTLED_MAIL_KEPT`. Returns how many
    rows it deleted."""
    async with unit_of_work(ctx) as session:
        forgotten = await accounts.forget_expired_refresh_tokens(session)
        forgotten += await password_resets.forget_expired_links(session)
        forgotten += await outbox.forget_settled_mail(session, utcnow() - SETTLED_MAIL_KEPT)
    return forgotten
