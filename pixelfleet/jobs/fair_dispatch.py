"""Fair sharing between accounts, at dispatch: one account's batch of ten thousand images must
not make another account's small task wait behind all of it.

A queue's broker (Celery's Redis list, or the embedded workers' view of the `tasks` table) takes
tasks first in, first out; so at most `PIXELFLEET_DISPATCH_AHEAD` tasks of a queue are handed
to it ahead of their start. A task submitted while the queue has room, and nobody waits their
turn, is handed out at once (the common case costs one more count in the submission's own
transaction); otherwise it waits its turn in the database (`dispatched_at` null). As workers
start tasks, room opens; once half of it is open, tasks waiting their turn are handed out to
fill it: the account with the fewest tasks handed out or running in the queue first (the one
that waited longest on a tie), its own tasks by priority, then age.

So a task of an account with nothing in flight waits behind at most `dispatch_ahead` tasks
already handed out, plus the ones running, whatever other accounts have queued. The upkeep
(`maintenance.redispatch_stale_tasks`) hands out what a lost start left waiting."""

from __future__ import annotations

import heapq
import logging
import uuid
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet import row_security
from pixelfleet.db import after_commit, unit_of_work, utcnow
from pixelfleet.jobs.dispatching import dispatch_after_commit
from pixelfleet.jobs.turns import TurnRepository
from pixelfleet.models import Task

if TYPE_CHECKING:
    from pixelfleet.context import ProcessContext

log = logging.getLogger(__name__)


async def hand_out_at_once(session: AsyncSession, queue: str | None, ahead: int) -> bool:
    """At a submission: whether its task goes to the workers now (the queue has room, and
    nobody waits their turn), or waits its turn."""
    handed_out, held = await TurnRepository.from_session(session).queue_state(queue)
    return not held and handed_out < ahead


async def low_on_work(session: AsyncSession, queue: str | None, ahead: int) -> bool:
    """At a start: whether tasks wait their turn in `queue` while at most half of `ahead` are
    handed out (the queue is refilled to `ahead` then, in one release)."""
    handed_out, held = await TurnRepository.from_session(session).queue_state(queue)
    return held and handed_out <= ahead // 2


def release_after_commit(session: AsyncSession, queue: str | None) -> None:
    """Hands out tasks of `queue` waiting their turn once the session's transaction commits
    (a task was held, or a worker started one)."""

    async def release_now(ctx: ProcessContext) -> None:
        # Every account's waiting tasks are weighed: not as the request's user, whose role
        # sees only its own rows (row-level security), but as the tables' owner.
        with row_security.acting_as(None):
            await release(ctx, queue)

    after_commit(session, release_now)


async def release(ctx: ProcessContext, queue: str | None) -> int:
    """Hands out as many tasks of `queue` waiting their turn as it has room for ahead of the
    workers, least-served account first; how many it handed out."""
    async with unit_of_work(ctx) as session:
        repo = TurnRepository.from_session(session)
        await repo.lock_releases(queue)
        handed_out, held = await repo.queue_state(queue)
        room = ctx.settings.dispatch_ahead - handed_out
        if not held or room <= 0:
            return 0
        now = utcnow()
        picks = await fair_picks(repo, queue, room)
        # A microsecond apart: the embedded workers take handed-out tasks in this order.
        tasks = [
            task
            for position, task in enumerate(picks)
            if await repo.hand_out(task.id, now + timedelta(microseconds=position))
        ]
        dispatch_after_commit(session, tasks)
    if tasks:
        log.debug("queue %s: %d task(s) handed out in turn", queue or "(default)", len(tasks))
    return len(tasks)


async def release_everywhere(ctx: ProcessContext) -> int:
    """The upkeep's pass: every queue where tasks wait their turn."""
    async with ctx.read_sessions() as session:
        queues = await TurnRepository.from_session(session).held_queues()
    released = 0
    for queue in queues:
        released += await release(ctx, queue)
    return released


async def fair_picks(repo: TurnRepository, queue: str | None, room: int) -> list[Task]:
    """The next `room` tasks waiting in `queue`, in the order they are handed out: slot by
    slot, to the account with the fewest in flight (counting those just picked)."""
    accounts = await repo.held_accounts(queue)
    in_flight = await repo.in_flight_of(queue, [user_id for user_id, _, _ in accounts])
    waiting = {user_id: count for user_id, count, _ in accounts}
    turns = [(in_flight.get(user_id, 0), oldest, user_id) for user_id, _, oldest in accounts]
    heapq.heapify(turns)
    order: list[uuid.UUID] = []
    while turns and len(order) < room:
        flying, oldest, user_id = heapq.heappop(turns)
        order.append(user_id)
        waiting[user_id] -= 1
        if waiting[user_id]:
            heapq.heappush(turns, (flying + 1, oldest, user_id))
    shares = Counter(order)
    tasks = {user_id: await repo.next_held(queue, user_id, n) for user_id, n in shares.items()}
    picked = []
    for user_id in order:
        if tasks[user_id]:
            picked.append(tasks[user_id].pop(0))
    return picked
