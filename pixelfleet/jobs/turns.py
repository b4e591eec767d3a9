"""The queries of fair sharing (`jobs/fair_dispatch.py`): a queue's tasks handed out to its
workers and not started, and its tasks waiting their turn in the database, by account. The
conditions are the partial indexes' own text (`models/task.py`), so both databases use them."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.db import advisory_xact_lock
from pixelfleet.jobs.states import QUEUED, RUNNING
from pixelfleet.models import Task
from pixelfleet.models.task import HANDED_OUT, HELD


def _in_queue(queue: str | None) -> ColumnElement[bool]:
    """The tasks of `queue`; None: the default queue (tasks that name none)."""
    return Task.queue.is_(None) if queue is None else Task.queue == queue


class TurnRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> TurnRepository:
        return cls(session)

    async def queue_state(self, queue: str | None) -> tuple[int, bool]:
        """In `queue` (None: the default one): how many tasks are handed out and not started,
        and whether any waits its turn, across every account; one round trip. On PostgreSQL
        through `pixelfleet_queue_state` (migration 0018), which answers these two numbers
        whatever rows the session's role may see."""
        if self.session.get_bind().dialect.name == "postgresql":
            row = (
                await self.session.execute(
                    text("SELECT handed_out, held FROM pixelfleet_queue_state(:queue)"),
                    {"queue": queue},
                )
            ).one()
            return int(row[0]), bool(row[1])
        handed_out = (
            select(func.count())
            .select_from(Task)
            .where(text(HANDED_OUT), _in_queue(queue))
            .scalar_subquery()
        )
        held = exists().where(text(HELD), _in_queue(queue))
        row = (await self.session.execute(select(handed_out, held))).one()
        return int(row[0]), bool(row[1])

    async def count_held(self, queue: str | None) -> int:
        """Tasks of `queue` waiting their turn (in the backlog, though not in the broker)."""
        statement = select(func.count()).select_from(Task).where(text(HELD), _in_queue(queue))
        return int(await self.session.scalar(statement) or 0)

    async def lock_releases(self, queue: str | None) -> None:
        """Releases of `queue` wait for each other until the transaction ends, so that two
        starts at once do not both fill the same room (see `db.advisory_xact_lock`)."""
        key = zlib.crc32(f"pixelfleet:release:{queue or ''}".encode())
        await advisory_xact_lock(self.session, key)

    async def held_queues(self) -> list[str | None]:
        rows = await self.session.scalars(select(Task.queue).where(text(HELD)).distinct())
        return list(rows)

    async def held_accounts(self, queue: str | None) -> list[tuple[uuid.UUID, int, datetime]]:
        """Each account with tasks waiting their turn in `queue`: how many, since when."""
        rows = await self.session.execute(
            select(Task.user_id, func.count(), func.min(Task.created_at))
            .where(text(HELD), _in_queue(queue))
            .group_by(Task.user_id)
        )
        return [(user_id, int(count), oldest) for user_id, count, oldest in rows]

    async def in_flight_of(
        self, queue: str | None, user_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """Each account's tasks of `queue` handed out or running."""
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(Task.user_id, func.count())
            .where(
                Task.user_id.in_(user_ids),
                Task.status.in_((QUEUED, RUNNING)),  # ix_tasks_user_status
                _in_queue(queue),
                or_(Task.status == RUNNING, Task.dispatched_at.is_not(None)),
            )
            .group_by(Task.user_id)
        )
        return {user_id: int(count) for user_id, count in rows}

    async def next_held(self, queue: str | None, user_id: uuid.UUID, limit: int) -> list[Task]:
        """The account's next tasks waiting in `queue`: highest priority, then oldest, first."""
        statement = (
            select(Task)
            .where(text(HELD), _in_queue(queue), Task.user_id == user_id)
            .order_by(Task.priority.desc(), Task.created_at)
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())

    async def hand_out(self, task_id: uuid.UUID, now: datetime) -> bool:
        """Marks a task waiting its turn as handed out now, unless another did first."""
        outcome = await self.session.execute(
            update(Task)
            .where(Task.id == task_id, text(HELD))
            .values(dispatched_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(outcome, "rowcount", 0))
