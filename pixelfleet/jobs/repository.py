"""All SQL about tasks and idempotency keys. State changes are conditional UPDATEs: whoever
matches the expected state wins, so a race between a worker, a cancel and a recovery job has
exactly one winner."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    Update,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.base import ExecutableOption

from pixelfleet.db import newest_first
from pixelfleet.jobs.states import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from pixelfleet.models import IdempotencyKey, Task, TaskOutput
from pixelfleet.models.task import HANDED_OUT

_TASKS = cast("Table", Task.__table__)


def _attempt_statement(which: ColumnElement[bool], *conditions: ColumnElement[bool]) -> Update:
    """The UPDATE that starts a new attempt of the task `which` picks (if `conditions` hold), for
    the bound `worker` at the bound `now`. RETURNING hands back what the worker needs in the same
    round trip. Built once, on the table (no ORM bookkeeping for a row nobody loads): a worker
    runs it for every task, and building and keying the statement cost more than running it."""
    now = bindparam("now", type_=_TASKS.c.started_at.type)
    return (
        update(_TASKS)
        .where(which, *conditions)
        .values(
            status=RUNNING,
            worker=bindparam("worker", type_=_TASKS.c.worker.type),
            attempts=_TASKS.c.attempts + 1,
            started_at=now,
            heartbeat_at=now,
            updated_at=now,
            progress=0,
            stage="starting",
        )
        .returning(
            _TASKS.c.id,
            _TASKS.c.user_id,
            _TASKS.c.attempts,
            _TASKS.c.source_key,
            _TASKS.c.pipeline,
            _TASKS.c.callback_url,
            _TASKS.c.created_at,
            _TASKS.c.source_width,
            _TASKS.c.source_height,
            _TASKS.c.deadline_at,
            _TASKS.c.max_attempts,
            _TASKS.c.queue,
        )
    )


_TASK_ID = bindparam("task_id", type_=_TASKS.c.id.type)
_CLAIM = _attempt_statement(_TASKS.c.id == _TASK_ID, _TASKS.c.status == QUEUED)
_CLAIM_NEXT = _attempt_statement(
    _TASKS.c.id
    == (
        select(_TASKS.c.id)
        # In the order they were handed out, as a broker's queue would take them; not those
        # waiting their turn (fair sharing).
        .where(text(HANDED_OUT))
        .order_by(_TASKS.c.dispatched_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    ),
    _TASKS.c.status == QUEUED,
)
_TAKE_OVER = _attempt_statement(
    _TASKS.c.id == _TASK_ID,
    _TASKS.c.status == RUNNING,
    _TASKS.c.worker == bindparam("holder", type_=_TASKS.c.worker.type),
)


@dataclass(frozen=True)
class ClaimedTask:
    """What a worker needs to run the task it just claimed."""

    task_id: uuid.UUID
    user_id: uuid.UUID
    attempt: int
    source_key: str
    pipeline: dict[str, Any]
    callback_url: str | None
    created_at: datetime
    started_at: datetime
    source_pixels: int
    deadline_at: datetime | None = None
    """Past this the task fails (`deadline-exceeded`); None: no deadline of its own."""
    max_attempts: int | None = None
    """Its own limit of attempts; None: the service's."""
    queue: str | None = None
    """Its queue (None: the default one)."""


@dataclass(frozen=True)
class OutputView:
    """One stored output, as a reader sees it."""

    name: str
    format: str
    content_type: str
    width: int
    height: int
    bytes: int
    key: str | None
    alternates: list[dict[str, Any]] | None
    placeholder: str | None
    dominant_color: str | None


@dataclass(frozen=True)
class TaskView:
    """A task as its owner reads it: plain values, read in one statement with its outputs (no
    entity, so nothing to keep in step with the session)."""

    id: uuid.UUID
    status: str
    progress: int
    stage: str | None
    cost: int
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    source_format: str
    source_width: int
    source_height: int
    source_bytes: int
    source_kind: str
    source_ref: str | None
    pipeline: dict[str, Any]
    expires_at: datetime | None
    error_code: str | None
    error_message: str | None
    callback_url: str | None
    outputs: list[OutputView]


@dataclass(frozen=True)
class TaskProgress:
    """Where a task stands: what its event stream sends."""

    id: uuid.UUID
    status: str
    progress: int
    stage: str | None
    error_code: str | None
    error_message: str | None


TASK_VIEW_NAMES = tuple(field.name for field in fields(TaskView) if field.name != "outputs")
TASK_VIEW = tuple(getattr(Task, name) for name in TASK_VIEW_NAMES)
"""The columns of a `TaskView`, in its fields' order (its outputs come from `_OUTPUT_VIEW`)."""
_OUTPUT_VIEW = tuple(
    getattr(TaskOutput, field.name).label(f"output_{field.name}") for field in fields(OutputView)
)


def _with_outputs(tasks: Select[Any]) -> Select[Any]:
    """`tasks` (a select of `TASK_VIEW`) with each task's outputs joined in: one row per
    output (or one row of NULLs for a task without any)."""
    return tasks.add_columns(*_OUTPUT_VIEW).outerjoin(TaskOutput, TaskOutput.task_id == Task.id)


def _views(rows: Sequence[Row[Any]]) -> list[TaskView]:
    """The tasks of `_with_outputs` rows (a task's rows together, its outputs in order)."""
    views: list[TaskView] = []
    for row in rows:
        if not views or views[-1].id != row.id:
            values = dict(zip(TASK_VIEW_NAMES, row, strict=False))
            views.append(TaskView(**values, outputs=[]))
        if row.output_name is not None:
            output = row[len(TASK_VIEW_NAMES) :]
            views[-1].outputs.append(OutputView(*output))
    return views


def _silent_since(cutoff: datetime) -> ColumnElement[bool]:
    return or_(Task.heartbeat_at.is_(None), Task.heartbeat_at < cutoff)


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> TaskRepository:
        return cls(session)

    async def add(self, task: Task) -> Task:
        self.session.add(task)
        await self.session.flush()
        return task

    async def get(self, task_id: uuid.UUID) -> Task | None:
        return await self.session.get(Task, task_id, populate_existing=True)

    async def get_for_user(self, task_id: uuid.UUID, user_id: uuid.UUID) -> Task | None:
        return await self.session.scalar(
            select(Task)
            .where(Task.id == task_id, Task.user_id == user_id)
            .execution_options(populate_existing=True)
        )

    async def task_view(
        self, task_id: uuid.UUID, user_id: uuid.UUID, *, only_if: ColumnElement[bool] | None = None
    ) -> TaskView | None:
        """The user's task with its outputs, in one statement (which finds nothing unless
        `only_if` holds, where one is given)."""
        found = select(*TASK_VIEW).where(Task.id == task_id, Task.user_id == user_id)
        if only_if is not None:
            found = found.where(only_if)
        statement = _with_outputs(found).order_by(TaskOutput.position)
        views = _views((await self.session.execute(statement)).all())
        return views[0] if views else None

    async def page_views_for_user(
        self,
        user_id: uuid.UUID,
        *,
        status: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[TaskView]:
        """A page of the user's tasks, newest first, with their outputs, in one statement."""
        page = select(Task.id).where(Task.user_id == user_id)
        if status is not None:
            page = page.where(Task.status == status)
        on_page = newest_first(page, Task.created_at, Task.id, after, limit).subquery()
        statement = _with_outputs(
            select(*TASK_VIEW).join(on_page, on_page.c.id == Task.id)
        ).order_by(Task.created_at.desc(), Task.id.desc(), TaskOutput.position)
        return _views((await self.session.execute(statement)).all())

    async def progress_for_user(
        self, task_id: uuid.UUID, user_id: uuid.UUID
    ) -> TaskProgress | None:
        row = (
            await self.session.execute(
                select(
                    Task.id,
                    Task.status,
                    Task.progress,
                    Task.stage,
                    Task.error_code,
                    Task.error_message,
                ).where(Task.id == task_id, Task.user_id == user_id)
            )
        ).one_or_none()
        return None if row is None else TaskProgress(*row)

    async def idempotency_key(self, user_id: uuid.UUID, key: str) -> IdempotencyKey | None:
        return await self.session.get(IdempotencyKey, (user_id, key))

    async def task_of_idempotency_key(self, key: str) -> uuid.UUID | None:
        """The task a key (whoever used it) was first answered with; keys made by PixelFleet
        (`imagejob:<uid>`) are unique across accounts."""
        statement = select(IdempotencyKey.task_id).where(IdempotencyKey.key == key).limit(1)
        return await self.session.scalar(statement)

    async def add_idempotency_key(self, record: IdempotencyKey) -> None:
        self.session.add(record)
        await self.session.flush()

    async def _ended(self, statement: Update, *options: ExecutableOption) -> Task | None:
        """Runs a task's final state change and hands back the task as it left it (RETURNING:
        no read after the write), or None if the change matched no row."""
        ended: Task | None = await self.session.scalar(
            statement.returning(Task)
            .options(*options)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return ended

    @staticmethod
    def _owned(statement: Update, worker: str | None, silent_since: datetime | None) -> Update:
        """Narrows a state change to the worker that holds the task and, for the recovery job,
        to a task that is still silent (its worker may have spoken since it was read)."""
        if worker is not None:
            statement = statement.where(Task.worker == worker)
        if silent_since is not None:
            statement = statement.where(_silent_since(silent_since))
        return statement

    async def claim(self, task_id: uuid.UUID, worker: str, now: datetime) -> ClaimedTask | None:
        """Takes a queued task for `worker` (a new attempt); what it needs to run, or None."""
        return await self._start_attempt(_CLAIM, worker, now, task_id=task_id)

    async def claim_next(self, worker: str, now: datetime) -> ClaimedTask | None:
        """Takes the queued task handed out first for `worker` (a new attempt), in one
        statement; what it needs to run, or None when nothing is handed out.

        On PostgreSQL the pick skips rows another claimer has locked (`FOR UPDATE SKIP
        LOCKED`), so concurrent workers take different tasks without waiting on each other; on
        SQLite a writer holds the database (`BEGIN IMMEDIATE`), so claims are one at a time.
        Either way the UPDATE re-checks that the task is still queued: one claimer per task."""
        return await self._start_attempt(_CLAIM_NEXT, worker, now)

    async def take_over(
        self, task_id: uuid.UUID, holder: str, worker: str, now: datetime
    ) -> ClaimedTask | None:
        """Moves a running task from a worker known to be gone to `worker` (a new attempt)."""
        return await self._start_attempt(_TAKE_OVER, worker, now, task_id=task_id, holder=holder)

    async def _start_attempt(
        self, statement: Update, worker: str, now: datetime, **params: Any
    ) -> ClaimedTask | None:
        row = (
            await self.session.execute(statement, {"worker": worker, "now": now, **params})
        ).one_or_none()
        if row is None:
            return None
        return ClaimedTask(
            row.id,
            row.user_id,
            row.attempts,
            row.source_key,
            row.pipeline,
            row.callback_url,
            created_at=row.created_at,
            started_at=now,
            source_pixels=row.source_width * row.source_height,
            deadline_at=row.deadline_at,
            max_attempts=row.max_attempts,
            queue=row.queue,
        )

    async def record_progress(
        self, task_id: uuid.UUID, worker: str, progress: int, stage: str, now: datetime
    ) -> None:
        await self.session.execute(
            update(Task)
            .where(Task.id == task_id, Task.status == RUNNING, Task.worker == worker)
            .values(progress=progress, stage=stage, heartbeat_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def is_held_by(self, task_id: uuid.UUID, worker: str) -> bool:
        """Whether the task is running under `worker` (not cancelled, requeued or taken over)."""
        held = await self.session.scalar(
            select(Task.id).where(Task.id == task_id, Task.status == RUNNING, Task.worker == worker)
        )
        return held is not None

    async def mark_succeeded(
        self,
        task_id: uuid.UUID,
        worker: str,
        now: datetime,
        expires_at: datetime,
        outputs: Sequence[TaskOutput],
    ) -> Task | None:
        """Records the outputs, if this worker still holds the task: the task as it ends."""
        task = await self._ended(
            update(Task)
            .where(Task.id == task_id, Task.status == RUNNING, Task.worker == worker)
            .values(
                status=SUCCEEDED,
                progress=100,
                stage="done",
                finished_at=now,
                updated_at=now,
                expires_at=expires_at,
            ),
            lazyload(Task.outputs),  # they are the ones written here: set below, not read
        )
        if task is None:
            return None
        self.session.add_all(outputs)
        await self.session.flush()
        set_committed_value(task, "outputs", list(outputs))
        return task

    async def mark_failed(
        self,
        task_id: uuid.UUID,
        expected: set[str],
        code: str,
        message: str,
        now: datetime,
        expires_at: datetime,
        worker: str | None = None,
        silent_since: datetime | None = None,
    ) -> Task | None:
        statement = self._owned(
            update(Task).where(Task.id == task_id, Task.status.in_(expected)), worker, silent_since
        )
        return await self._ended(
            statement.values(
                status=FAILED,
                error_code=code,
                error_message=message[:2000],
                stage="failed",
                finished_at=now,
                updated_at=now,
                expires_at=expires_at,
            )
        )

    async def requeue(
        self,
        task_id: uuid.UUID,
        worker: str | None,
        now: datetime,
        silent_since: datetime | None = None,
    ) -> bool:
        statement = self._owned(
            update(Task).where(Task.id == task_id, Task.status == RUNNING), worker, silent_since
        )
        outcome = await self.session.execute(
            statement.values(
                status=QUEUED, worker=None, progress=0, stage="requeued", updated_at=now
            ).execution_options(synchronize_session=False)
        )
        return bool(getattr(outcome, "rowcount", 0))

    async def mark_cancelled(
        self, task_id: uuid.UUID, expected: set[str], now: datetime, expires_at: datetime
    ) -> Task | None:
        return await self._ended(
            update(Task)
            .where(Task.id == task_id, Task.status.in_(expected))
            .values(
                status=CANCELLED,
                stage="cancelled",
                finished_at=now,
                updated_at=now,
                expires_at=expires_at,
            )
        )

    async def count_queued(self) -> int:
        """Tasks waiting for a worker (the embedded mode's backlog)."""
        return int(
            await self.session.scalar(
                select(func.count()).select_from(Task).where(Task.status == QUEUED)
            )
            or 0
        )

    async def running_per_worker(self, worker_prefix: str) -> dict[str, int]:
        """How many tasks each worker whose name starts with `worker_prefix` is running."""
        rows = await self.session.execute(
            select(Task.worker, func.count())
            .where(Task.status == RUNNING, Task.worker.startswith(worker_prefix))
            .group_by(Task.worker)
        )
        return {str(worker): int(count) for worker, count in rows.all()}

    async def count_active_for_user(self, user_id: uuid.UUID) -> int:
        """The user's tasks that are queued or running."""
        statement = (
            select(func.count())
            .select_from(Task)
            .where(Task.user_id == user_id, Task.status.in_((QUEUED, RUNNING)))
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def queued_dispatched_before(self, cutoff: datetime, limit: int) -> list[Task]:
        statement = (
            select(Task)
            .where(
                Task.status == QUEUED,
                Task.dispatched_at < cutoff,  # handed out; not those waiting their turn
            )
            .order_by(Task.created_at)
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())

    async def mark_dispatched(self, task_id: uuid.UUID, cutoff: datetime, now: datetime) -> bool:
        """Stamps a queued task as dispatched now, unless another job just did."""
        outcome = await self.session.execute(
            update(Task)
            .where(Task.id == task_id, Task.status == QUEUED, Task.dispatched_at < cutoff)
            .values(dispatched_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(outcome, "rowcount", 0))

    async def running_started_before(self, cutoff: datetime, limit: int) -> list[Task]:
        statement = (
            select(Task)
            .where(Task.status == RUNNING, Task.started_at < cutoff)
            .order_by(Task.started_at)
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())

    async def past_deadline(self, now: datetime, limit: int) -> list[Task]:
        """Queued and running tasks whose own deadline has passed."""
        statement = (
            select(Task)
            .where(Task.status.in_((QUEUED, RUNNING)), Task.deadline_at < now)
            .order_by(Task.deadline_at)
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())

    async def running_with_heartbeat_before(
        self, cutoff: datetime, worker_prefix: str | None = None
    ) -> list[Task]:
        statement = select(Task).where(Task.status == RUNNING, _silent_since(cutoff))
        if worker_prefix is not None:
            statement = statement.where(Task.worker.startswith(worker_prefix, autoescape=True))
        return list((await self.session.scalars(statement)).all())

    async def expired_unpurged(self, now: datetime, limit: int) -> list[Task]:
        statement = (
            select(Task)
            .where(Task.expires_at < now, Task.files_purged_at.is_(None))
            .order_by(Task.expires_at)
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())

    async def mark_files_purged(self, task_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(files_purged_at=now)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            update(TaskOutput)
            .where(TaskOutput.task_id == task_id)
            .values(key=None)
            .execution_options(synchronize_session=False)
        )
