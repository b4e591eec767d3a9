"""How a task ends: the one place that settles a task as succeeded, failed or cancelled.

Every path that ends a task comes here (a worker's result or failure, the recovery of a task
whose worker vanished or overran its hard limit, a cancel from the API or from a deleted
ImageJob), so each end does the same things, in the caller's transaction (these functions take
its session and never commit):
- the task's final state, written only if the task is still in the state the caller expects
  (a conditional UPDATE: of two settlers at once, one wins, the other gets None), which hands
  back the task as it left it (RETURNING), for everything below;
- the refund of its credits (a failure; a cancel before it started);
- the count of its outcome (once the transaction commits);
- its webhook event in the outbox (`webhook_deliveries`), when it has a callback URL;
and, queued to run after the commit (`db.after_commit`), dropped if the transaction rolls back:
- its final event on the event channel, for watchers (the API's event stream, the operator);
- the start of its webhook's delivery (the sweep retries whatever this misses).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.credits import service as credits
from pixelfleet.db import after_commit, utcnow
from pixelfleet.events import TaskEvent
from pixelfleet.jobs import metrics
from pixelfleet.jobs.bounds import DEADLINE_EXCEEDED, exhausted
from pixelfleet.jobs.dispatching import dropped_after_commit, withdrawn_after_commit
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.jobs.states import QUEUED, RUNNING
from pixelfleet.models import Task, TaskOutput
from pixelfleet.webhooks import service as webhooks

if TYPE_CHECKING:
    from pixelfleet.context import ProcessContext


async def settle_succeeded(
    session: AsyncSession,
    task_id: uuid.UUID,
    worker: str,
    outputs: Sequence[TaskOutput],
    retention: timedelta,
) -> Task | None:
    """Stores a running task's outputs and marks it succeeded, if `worker` still holds it;
    None if it does not (cancelled or taken over while it ran: its outputs are nobody's)."""
    now = utcnow()
    repo = TaskRepository.from_session(session)
    task = await repo.mark_succeeded(task_id, worker, now, now + retention, outputs)
    if task is None:
        return None
    metrics.count_stored_outputs(session, (stored for o in outputs for stored in o.stored_files()))
    return await _settled(session, task, "succeeded", now)


async def settle_failed(
    session: AsyncSession,
    task_id: uuid.UUID,
    code: str,
    message: str,
    retention: timedelta,
    *,
    worker: str | None,
    silent_since: datetime | None = None,
) -> Task | None:
    """Fails a running task and refunds it: the task `worker` holds (and, for the recovery job,
    only while it has been silent since `silent_since`). None if it is not so any more."""
    now = utcnow()
    repo = TaskRepository.from_session(session)
    task = await repo.mark_failed(
        task_id,
        {RUNNING},
        code,
        message,
        now,
        now + retention,
        worker=worker,
        silent_since=silent_since,
    )
    if task is None:
        return None
    await credits.refund_task(session, task.user_id, task.id, task.cost, f"failed: {code}")
    return await _settled(session, task, "failed", now)


async def settle_worker_lost(
    session: AsyncSession,
    task: Task,
    retention: timedelta,
    *,
    silent_since: datetime | None = None,
) -> Task | None:
    """Fails and refunds a running task whose worker stopped during each of its attempts (its
    own limit's failure, `backoff-limit-exceeded`, when it set one)."""
    end = exhausted(
        task.max_attempts,
        task.attempts,
        "worker-lost",
        f"The worker stopped during each of {task.attempts} attempts.",
    )
    return await settle_failed(
        session,
        task.id,
        end.code,
        end.message,
        retention,
        worker=task.worker,
        silent_since=silent_since,
    )


async def settle_past_deadline(
    session: AsyncSession, task_id: uuid.UUID, message: str, retention: timedelta
) -> Task | None:
    """Fails a queued or running task whose own deadline passed, and refunds it: a queued one's
    message is dropped, a running one's worker is told (it stops at once). None if it had
    already finished."""
    now = utcnow()
    repo = TaskRepository.from_session(session)
    for status in (QUEUED, RUNNING):
        task = await repo.mark_failed(
            task_id, {status}, DEADLINE_EXCEEDED, message, now, now + retention
        )
        if task is None:
            continue
        await credits.refund_task(
            session, task.user_id, task.id, task.cost, f"failed: {DEADLINE_EXCEEDED}"
        )
        ended = await _settled(session, task, "failed", now, was_running=status == RUNNING)
        if status == QUEUED:
            dropped_after_commit(session, ended)
        else:
            withdrawn_after_commit(session, ended)
        return ended
    return None


async def settle_cancelled(
    session: AsyncSession, task_id: uuid.UUID, retention: timedelta
) -> Task | None:
    """Cancels a queued task (refunded) or a running one (charged: its work was under way; its
    worker sees it is no longer its own and stops). None if it had already finished."""
    now = utcnow()
    repo = TaskRepository.from_session(session)
    if (task := await repo.mark_cancelled(task_id, {QUEUED}, now, now + retention)) is not None:
        await credits.refund_task(
            session, task.user_id, task.id, task.cost, "cancelled before start"
        )
        # A queued task may have started before (and been requeued): it was not running now.
        dropped = await _settled(session, task, "cancelled", now, was_running=False)
        dropped_after_commit(session, dropped)
        return dropped
    if (task := await repo.mark_cancelled(task_id, {RUNNING}, now, now + retention)) is not None:
        cancelled = await _settled(session, task, "cancelled", now)
        withdrawn_after_commit(session, cancelled)
        return cancelled
    return None


async def _settled(
    session: AsyncSession,
    task: Task,
    outcome: metrics.FinalOutcome,
    now: datetime,
    *,
    was_running: bool = True,
) -> Task:
    """What every end does once the task's final state is written and `task` read after it."""
    metrics.count_finished(session, outcome, task.started_at if was_running else None, now)
    await webhooks.record_task_event(session, task)
    announce(session, TaskEvent.from_task(task))
    if task.callback_url is not None:
        start_webhooks(session, task.id)
    return task


def announce(session: AsyncSession, event: TaskEvent) -> None:
    """Publishes `event` on the event channel once the caller's transaction commits."""

    async def publish(ctx: ProcessContext) -> None:
        await ctx.events.publish(event)

    after_commit(session, publish)


def start_webhooks(session: AsyncSession, task_id: uuid.UUID) -> None:
    """Starts sending the task's due webhook deliveries once the caller's transaction (which
    recorded them) commits; best effort: the sweep sends whatever this misses."""

    async def start(ctx: ProcessContext) -> None:
        await ctx.webhooks.send_due(task_id)

    after_commit(session, start)
