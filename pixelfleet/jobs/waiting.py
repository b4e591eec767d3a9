"""Waiting for a task to change (a long-poll) or to end: the hub brings each change as it
happens, the record says where the task stands."""

from __future__ import annotations

import asyncio
import uuid

from pixelfleet.context import ProcessContext
from pixelfleet.events.hub import EventHub
from pixelfleet.jobs import service as jobs
from pixelfleet.jobs.schemas import TaskOut
from pixelfleet.jobs.states import FINAL_STATES

# After this long without an event, the record is read anyway (an event lost on the way only
# delays the answer).
QUIET_READ_SECONDS = 1.0


def _where(task: TaskOut) -> tuple[str, int, str | None]:
    """What a change is: its status, progress or stage moved (not a heartbeat's `updated_at`)."""
    return task.status, task.progress, task.stage


async def task_after_change(
    ctx: ProcessContext, hub: EventHub, user_id: uuid.UUID, task_id: uuid.UUID, wait: float
) -> TaskOut:
    """The user's task once it changes, is final, or `wait` seconds pass. Each read has a
    session of its own: nothing is held while it waits."""
    return await _watched(ctx, hub, user_id, task_id, wait, until_final=False)


async def task_when_final(
    ctx: ProcessContext, hub: EventHub, user_id: uuid.UUID, task_id: uuid.UUID, wait: float
) -> TaskOut:
    """The user's task once it is final, or as it stands after `wait` seconds."""
    return await _watched(ctx, hub, user_id, task_id, wait, until_final=True)


async def _watched(
    ctx: ProcessContext,
    hub: EventHub,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    wait: float,
    *,
    until_final: bool,
) -> TaskOut:
    async def stored() -> TaskOut:
        async with ctx.read_sessions() as session:
            return await jobs.read_task(session, user_id, task_id)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    with hub.watch(task_id) as watch:  # before the first read: no change after it is missed
        first = current = await stored()
        while current.status not in FINAL_STATES:
            left = deadline - loop.time()
            if left <= 0:
                break
            await watch.next(min(left, QUIET_READ_SECONDS))
            current = await stored()
            if not until_final and _where(current) != _where(first):
                break
    return current
