"""Submitting, reading, listing and cancelling tasks; the rules of their lifecycle."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.credits import service as credits
from pixelfleet.credits.pricing import price_task
from pixelfleet.db import utcnow
from pixelfleet.errors import FieldError, InvalidInput
from pixelfleet.imaging.codecs import SourceInfo, output_format_for, sniff
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.pipeline import Pipeline, parse_pipeline, predict_output_size
from pixelfleet.jobs.errors import (
    IdempotencyKeyReused,
    ResultExpired,
    ResultNotReady,
    TaskAlreadyFinished,
    TaskNotFound,
)
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.jobs.schemas import TaskOut, TaskPage
from pixelfleet.jobs.states import ALL_STATES, FINAL_STATES, QUEUED, RUNNING, SUCCEEDED
from pixelfleet.models import IdempotencyKey, Task, User
from pixelfleet.pagination import decode_cursor, encode_cursor
from pixelfleet.storage import Storage

MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class Submission:
    task: Task
    created: bool


def quote(pipeline: Pipeline, source: SourceInfo) -> int:
    return price_task(
        (operation.op for operation in pipeline.operations),
        output_format_for(pipeline.output.format, source.format).name,
        source.width * source.height,
    )


def _request_fingerprint(upload: bytes, pipeline: Pipeline) -> str:
    digest = hashlib.sha256(upload)
    digest.update(b"\0")
    digest.update(json.dumps(pipeline.model_dump(mode="json"), sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def _check_idempotency_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidInput(
            "The Idempotency-Key header must be 1 to 255 characters.",
            errors=[FieldError("Idempotency-Key", "must be 1 to 255 characters")],
        )


async def _replay(
    session: AsyncSession, user: User, key: str, fingerprint: str
) -> Submission | None:
    repo = TaskRepository.from_session(session)
    record = await repo.idempotency_key(user.id, key)
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different image or pipeline."
        )
    task = await repo.get(record.task_id)
    assert task is not None
    return Submission(task, created=False)


async def submit_task(
    session: AsyncSession,
    storage: Storage,
    user: User,
    upload: bytes,
    raw_pipeline: str,
    limits: ImageLimits,
    *,
    idempotency_key: str | None = None,
) -> Submission:
    """Validates the upload and pipeline, stores the upload, debits the cost and queues the task,
    all in the caller's transaction. The same key with the same request returns the first task."""
    _check_idempotency_key(idempotency_key)
    pipeline = parse_pipeline(raw_pipeline, limits)
    source = sniff(upload, limits)
    predict_output_size(source, pipeline, limits)  # refuses impossible or oversized work up front
    fingerprint = _request_fingerprint(upload, pipeline)
    if idempotency_key is not None:
        replay = await _replay(session, user, idempotency_key, fingerprint)
        if replay is not None:
            return replay

    stored = pipeline.model_copy(
        update={
            "output": pipeline.output.model_copy(
                update={"format": output_format_for(pipeline.output.format, source.format).name}
            )
        }
    )
    task_id = uuid.uuid4()
    task = Task(
        id=task_id,
        user_id=user.id,
        status=QUEUED,
        progress=0,
        stage="queued",
        cost=quote(pipeline, source),
        pipeline=stored.model_dump(mode="json"),
        source_key=f"sources/{task_id}",
        source_format=source.format,
        source_width=source.width,
        source_height=source.height,
        source_bytes=len(upload),
        attempts=0,
    )
    await storage.put(task.source_key, upload)
    repo = TaskRepository.from_session(session)
    try:
        async with session.begin_nested():
            await repo.add(task)
            await credits.debit_for_task(session, user.id, task.id, task.cost)
            if idempotency_key is not None:
                await repo.add_idempotency_key(
                    IdempotencyKey(
                        user_id=user.id,
                        key=idempotency_key,
                        request_hash=fingerprint,
                        task_id=task.id,
                    )
                )
    except IntegrityError:
        await storage.delete(task.source_key)
        if idempotency_key is not None:
            replay = await _replay(session, user, idempotency_key, fingerprint)
            if replay is not None:
                return replay
        raise
    except BaseException:
        await storage.delete(task.source_key)
        raise
    return Submission(task, created=True)


async def get_task(session: AsyncSession, user: User, task_id: uuid.UUID) -> Task:
    task = await TaskRepository.from_session(session).get_for_user(task_id, user.id)
    if task is None:
        raise TaskNotFound(f"No task {task_id} exists for this account.")
    return task


async def list_tasks(
    session: AsyncSession, user: User, *, status: str | None, cursor: str | None, limit: int
) -> TaskPage:
    if status is not None and status not in ALL_STATES:
        raise InvalidInput(
            f"Unknown status {status!r}.",
            errors=[FieldError("status", f"must be one of {', '.join(ALL_STATES)}")],
        )
    after = None
    if cursor:
        position = decode_cursor(cursor, {"created_at": str, "id": str})
        try:
            after = (datetime.fromisoformat(position["created_at"]), uuid.UUID(position["id"]))
        except ValueError as exc:
            raise InvalidInput(
                "The cursor is not one this API returned.",
                errors=[FieldError("cursor", "not a valid cursor")],
            ) from exc
    tasks = await TaskRepository.from_session(session).page_for_user(
        user.id, status=status, after=after, limit=limit + 1
    )
    page, more = tasks[:limit], len(tasks) > limit
    next_cursor = None
    if more and page:
        last = page[-1]
        next_cursor = encode_cursor({"created_at": last.created_at.isoformat(), "id": str(last.id)})
    return TaskPage(items=[TaskOut.from_task(task) for task in page], next_cursor=next_cursor)


async def cancel_task(
    session: AsyncSession, user: User, task_id: uuid.UUID, retention: timedelta
) -> Task:
    """Cancels a queued task (refunded) or a running one (its result is discarded, not refunded)."""
    repo = TaskRepository.from_session(session)
    task = await get_task(session, user, task_id)
    now = utcnow()
    if await repo.mark_cancelled(task.id, {QUEUED}, now, now + retention):
        await credits.refund_task(
            session, task.user_id, task.id, task.cost, "cancelled before start"
        )
    elif not await repo.mark_cancelled(task.id, {RUNNING}, now, now + retention):
        raise TaskAlreadyFinished(f"Task {task_id} has already finished as {task.status}.")
    refreshed = await repo.get(task.id)
    assert refreshed is not None
    return refreshed


async def result_location(session: AsyncSession, user: User, task_id: uuid.UUID) -> Task:
    """The finished task whose result can be downloaded, or why it cannot."""
    task = await get_task(session, user, task_id)
    if task.status != SUCCEEDED:
        if task.status in FINAL_STATES:
            raise ResultNotReady(f"Task {task_id} ended as {task.status} and has no result.")
        raise ResultNotReady(f"Task {task_id} is {task.status}; its result is not ready yet.")
    if task.result_key is None:
        raise ResultExpired(f"The result of task {task_id} has expired and was deleted.")
    return task
