"""Running one task: claim it, run its pipeline, store the result, settle its credits.

This is the task code every launcher runs (embedded workers and Celery workers alike), and so
the task's transaction boundary: each step is a unit of work of its own (`db.unit_of_work`),
which commits, then runs the work queued for after its commit (events, webhook sends). A task's
end is settled by `jobs.settlement`. It is idempotent: a task that is
not `queued` any more is left alone, unless the caller proves its holder is gone (`take_over`).

The pipeline runs in a child process of the worker (`pipeline_processes`), so that a run past
the time limit, or whose task was cancelled (or taken from this worker), is stopped at once,
with its process, instead of running to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.assets import service as assets
from pixelfleet.context import ProcessContext
from pixelfleet.db import unit_of_work, utcnow
from pixelfleet.errors import PixelFleetError
from pixelfleet.events import TaskEvent
from pixelfleet.imaging.codecs import EncodedImage
from pixelfleet.imaging.formats import OUTPUT_FORMATS
from pixelfleet.imaging.spec import Pipeline
from pixelfleet.jobs import fair_dispatch, metrics
from pixelfleet.jobs.bounds import (
    DEADLINE_EXCEEDED,
    attempts_allowed,
    deadline_message,
    exhausted,
    seconds_left,
)
from pixelfleet.jobs.dispatching import requeued_after_commit
from pixelfleet.jobs.pipeline_runs import PipelineJob, PipelineTimedOut
from pixelfleet.jobs.repository import ClaimedTask, TaskRepository
from pixelfleet.jobs.settlement import (
    announce,
    settle_failed,
    settle_succeeded,
    settle_worker_lost,
)
from pixelfleet.jobs.stage_clock import step_times
from pixelfleet.jobs.states import QUEUED, RUNNING
from pixelfleet.models import Task, TaskOutput
from pixelfleet.observability import log_context
from pixelfleet.storage import StoredObjectMissing

log = logging.getLogger(__name__)

Outcome = Literal["skipped", "succeeded", "failed", "requeued", "discarded", "settling"]
"""How one task's turn at a worker ended. "settling": its run is over and its result is being
stored and settled in the background (`Settling`), while the worker goes on."""

# A task's progress reaches the database at most this often, and the event stream at most ten
# times a second (a change in between is sent with the next one).
PROGRESS_FLUSH_SECONDS = 0.25
EVENT_INTERVAL_SECONDS = 0.1
# Longest silence before the worker says it is alive anyway (a long AVIF encode, say).
MAX_HEARTBEAT_SECONDS = 10.0
# How often a running task's worker looks whether the task is still its own (a cancel, say):
# a run that is not is stopped, so its core is free within about this long. A worker with a
# doorbell (`ctx.doorbell`, rung by a cancel) looks when it rings, and otherwise only every
# `worker_poll_seconds`, in case a ring was lost.
HOLD_CHECK_SECONDS = 0.5

T = TypeVar("T")

TakeOver = Callable[[str], bool]
"""Given the worker that holds a running task, says whether it provably stopped working on it."""


def _event(
    task: Task | ClaimedTask,
    status: str,
    progress: int,
    stage: str | None,
    worker: str,
    attempts: int,
    error_code: str | None = None,
) -> TaskEvent:
    task_id = task.task_id if isinstance(task, ClaimedTask) else task.id
    return TaskEvent(
        task_id=task_id,
        user_id=task.user_id,
        status=status,
        progress=progress,
        stage=stage,
        attempts=attempts,
        worker=worker,
        error_code=error_code,
    )


class _ProgressFeed:
    """Carries the pipeline's progress on: changes go out as events (at most every
    EVENT_INTERVAL_SECONDS) and to the database (at most every PROGRESS_FLUSH_SECONDS, and as
    a heartbeat when nothing changes, so the recovery job never takes a busy worker for a lost
    one). Never fails the task."""

    def __init__(self, ctx: ProcessContext, claimed: ClaimedTask, worker: str) -> None:
        self.ctx = ctx
        self.claimed = claimed
        self.worker = worker
        self.changes: asyncio.Queue[tuple[str, int] | None] = asyncio.Queue()

    def report(self, stage: str, percent: int) -> None:
        self.changes.put_nowait((stage, min(percent, 99)))

    def close(self) -> None:
        self.changes.put_nowait(None)

    async def run(self) -> None:
        heartbeat = min(MAX_HEARTBEAT_SECONDS, self.ctx.settings.task_stale_seconds / 4)
        current = written = published = ("starting", 0)  # what the claim already wrote and sent
        last_write = last_publish = time.monotonic()
        while True:
            deadlines = [last_write + (PROGRESS_FLUSH_SECONDS if current != written else heartbeat)]
            if current != published:
                deadlines.append(last_publish + EVENT_INTERVAL_SECONDS)
            wait = max(0.0, min(deadlines) - time.monotonic())
            try:
                change = await asyncio.wait_for(self.changes.get(), wait)
            except TimeoutError:
                change = current
            if change is None:
                return
            current = change
            now = time.monotonic()
            if current != published and now - last_publish >= EVENT_INTERVAL_SECONDS:
                await self.ctx.events.publish(
                    _event(
                        self.claimed,
                        RUNNING,
                        current[1],
                        current[0],
                        self.worker,
                        self.claimed.attempt,
                    )
                )
                published, last_publish = current, now
            interval = PROGRESS_FLUSH_SECONDS if current != written else heartbeat
            if now - last_write >= interval:
                await self._write(current)
                written, last_write = current, time.monotonic()

    async def _write(self, progress: tuple[str, int]) -> None:
        try:
            async with unit_of_work(self.ctx) as session:
                await TaskRepository.from_session(session).record_progress(
                    self.claimed.task_id, self.worker, progress[1], progress[0], utcnow()
                )
        except Exception:
            log.warning("task %s: could not record progress", self.claimed.task_id, exc_info=True)


async def _fail(
    ctx: ProcessContext, task_id: uuid.UUID, worker: str, code: str, message: str
) -> Outcome:
    """Fails (and refunds) the task this worker holds; "discarded" if it holds it no more."""
    async with unit_of_work(ctx) as session:
        task = await settle_failed(session, task_id, code, message, ctx.retention, worker=worker)
    if task is None:
        return "discarded"
    log.info("task %s failed: %s", task_id, code)
    return "failed"


async def _source_missing(ctx: ProcessContext, task_id: uuid.UUID, worker: str) -> Outcome:
    return await _fail(ctx, task_id, worker, "source-missing", "The uploaded image is gone.")


async def _claim(
    ctx: ProcessContext, task_id: uuid.UUID, worker: str, take_over: TakeOver | None
) -> ClaimedTask | Outcome:
    now = utcnow()
    async with unit_of_work(ctx) as session:
        repo = TaskRepository.from_session(session)
        claimed = await repo.claim(task_id, worker, now)
        if claimed is None and take_over is not None:
            held = await repo.get(task_id)
            if held is None or held.status != RUNNING or not held.worker:
                return "skipped"
            if not take_over(held.worker):
                return "skipped"
            if held.attempts >= attempts_allowed(held.max_attempts, ctx.settings.task_max_attempts):
                # Its worker stopped during each attempt: a poison task ends here.
                failed = await settle_worker_lost(session, held, ctx.retention)
                return "skipped" if failed is None else "failed"
            claimed = await repo.take_over(task_id, held.worker, worker, now)
        if claimed is None:
            return "skipped"
        _started(session, claimed, worker)
        await _room_opened(ctx, session, claimed)
    return claimed


def _started(session: AsyncSession, claimed: ClaimedTask, worker: str) -> None:
    """What every claim does in its unit of work: count the start, announce it."""
    # The queue wait is observed at a task's first start only, not at a re-run's or a
    # take-over's (those wait on recovery, not on the queue).
    metrics.count_started(session, claimed)
    announce(session, _event(claimed, RUNNING, 0, "starting", worker, claimed.attempt))


async def process_task(
    ctx: ProcessContext,
    task_id: uuid.UUID,
    worker: str,
    *,
    take_over: TakeOver | None = None,
) -> Outcome:
    """Claims the named task (or takes it over, if `take_over` says its holder is gone) and
    runs it; "skipped" if it is not this worker's to run."""
    claim = await _claim(ctx, task_id, worker, take_over)
    if not isinstance(claim, ClaimedTask):
        return claim
    return await _run_claimed(ctx, claim, worker)


class Settling:
    """The result of a worker's last run, being stored and settled while its pipeline process
    is already at the next task: the process never waits for the worker's bookkeeping (which
    would otherwise leave a core idle between two runs, the more so the shorter they are).

    Results settle one at a time, in order, and a worker holds at most two tasks: `start`
    returns once the previous result is settled. Each is settled exactly as it would be at
    once (`settlement`): one cancelled meanwhile is discarded, one whose worker dies meanwhile
    is recovered like any task of a lost worker. A settle, once started, is never abandoned by
    its worker being cancelled (it is shielded), and how it ends is logged as soon as it does."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self._current: asyncio.Task[Outcome] | None = None

    async def start(self, settle: Coroutine[Any, Any, Outcome]) -> None:
        previous = self._current
        # Scheduled at once (it waits for the previous one itself), so no result is dropped
        # even if the wait below is cancelled.
        self._current = asyncio.create_task(self._after(previous, settle))
        self._current.add_done_callback(self._report)
        if previous is not None:
            await self._settled(previous)

    async def finish(self) -> Outcome | None:
        """Waits for the results being settled: how the last one's task ended."""
        current, self._current = self._current, None
        return None if current is None else await self._settled(current)

    @staticmethod
    async def _after(
        previous: asyncio.Task[Outcome] | None, settle: Coroutine[Any, Any, Outcome]
    ) -> Outcome:
        if previous is not None:
            await asyncio.wait({previous})  # however it ended
        return await settle

    @staticmethod
    async def _settled(settling: asyncio.Task[Outcome]) -> Outcome | None:
        await asyncio.wait({asyncio.shield(settling)})  # (a cancel of this wait spares it)
        if settling.cancelled() or settling.exception() is not None:
            return None
        return settling.result()

    def _report(self, settled: asyncio.Task[Outcome]) -> None:
        if settled.cancelled():
            log.warning("worker %s: storing a result was cancelled", self.worker)
        elif (error := settled.exception()) is not None:
            log.error(
                "worker %s: storing a result failed unexpectedly",
                self.worker,
                exc_info=(type(error), error, error.__traceback__),
            )
        else:
            log.info("worker %s: task finished as %s", self.worker, settled.result())


async def _room_opened(ctx: ProcessContext, session: AsyncSession, claimed: ClaimedTask) -> None:
    """A task started, so its queue has room for one more handed out: tasks waiting their turn
    are handed out once the room reaches half of `dispatch_ahead` (a release per start would
    cost a transaction per task)."""
    if await fair_dispatch.low_on_work(session, claimed.queue, ctx.settings.dispatch_ahead):
        fair_dispatch.release_after_commit(session, claimed.queue)


async def process_oldest_queued(
    ctx: ProcessContext, worker: str, settling: Settling | None = None
) -> Outcome | None:
    """Claims the oldest queued task (one statement, whatever other workers claim at the same
    time) and runs it; None when nothing is queued. With `settling`, a successful run's result
    is stored and settled there ("settling"), while the caller goes on to the next task."""
    async with unit_of_work(ctx) as session:
        repo = TaskRepository.from_session(session)
        claimed = await repo.claim_next(worker, utcnow())
        if claimed is not None:
            _started(session, claimed, worker)
            await _room_opened(ctx, session, claimed)
    if claimed is None:
        return None
    with log_context.scope(task_id=claimed.task_id):
        return await _run_claimed(ctx, claimed, worker, settling)


async def _run_claimed(
    ctx: ProcessContext, claim: ClaimedTask, worker: str, settling: Settling | None = None
) -> Outcome:
    task_id = claim.task_id
    try:
        pipeline = Pipeline.model_validate(claim.pipeline)
    except ValidationError:
        return await _fail(
            ctx,
            task_id,
            worker,
            "pipeline-unsupported",
            "This task's pipeline is not one this version can run.",
        )
    # A local file goes to the pipeline process by its path (it reads it itself); from
    # elsewhere, its bytes.
    source: bytes | Path | None = ctx.storage.local_path(claim.source_key)
    if source is None:
        try:
            source = await ctx.storage.get(claim.source_key)
        except StoredObjectMissing:
            return await _source_missing(ctx, task_id, worker)
    asset_bytes: Mapping[uuid.UUID, bytes] = {}
    if asset_ids := pipeline.asset_ids():
        async with ctx.read_sessions() as session:
            asset_bytes = await assets.load_asset_bytes(session, ctx.storage, asset_ids)

    limit = ctx.settings.task_soft_time_limit_seconds
    left = seconds_left(claim.deadline_at, utcnow())
    if left is not None and claim.deadline_at is not None:
        if left <= 0:
            return await _fail(
                ctx, task_id, worker, DEADLINE_EXCEEDED, deadline_message(claim.deadline_at)
            )
        limit = min(limit, left)
    feed = _ProgressFeed(ctx, claim, worker)
    reporter = asyncio.create_task(feed.run())
    job = PipelineJob(source, pipeline, ctx.settings.image_limits, asset_bytes)
    try:
        run = await _while_held(
            ctx, task_id, worker, ctx.pipelines.run(job, feed.report, time_limit=limit)
        )
    except ClaimLost:
        # Cancelled, or handed to another worker: its run was stopped, its result is nobody's.
        log.info("task %s is no longer this worker's; its run was stopped", task_id)
        return "discarded"
    except StoredObjectMissing:
        return await _source_missing(ctx, task_id, worker)
    except PipelineTimedOut:
        if claim.deadline_at is not None and limit < ctx.settings.task_soft_time_limit_seconds:
            message = deadline_message(claim.deadline_at)
            return await _fail(ctx, task_id, worker, DEADLINE_EXCEEDED, message)
        return await _fail(
            ctx, task_id, worker, "time-limit", f"Processing took longer than {limit:g} seconds."
        )
    except PixelFleetError as exc:
        return await _fail(ctx, task_id, worker, exc.slug, exc.detail)
    except Exception as exc:
        log.exception("task %s failed unexpectedly on attempt %d", task_id, claim.attempt)
        if claim.attempt >= attempts_allowed(claim.max_attempts, ctx.settings.task_max_attempts):
            end = exhausted(
                claim.max_attempts,
                claim.attempt,
                "internal-error",
                f"Processing failed after {claim.attempt} attempts: {type(exc).__name__}.",
            )
            return await _fail(ctx, task_id, worker, end.code, end.message)
        await release(ctx, task_id, worker)
        return "requeued"
    finally:
        feed.close()
        await reporter

    formats = {name: image.format for name, image in run.outputs.items()}
    metrics.record_pipeline_run(step_times(run.stages, formats), claim.source_pixels)
    store = _store_result(ctx, claim, worker, run.outputs)
    if settling is None:
        return await store
    await settling.start(store)  # its asyncio task logs under this one's task id
    return "settling"


class ClaimLost(Exception):
    """The task stopped being this worker's while it ran (cancelled, taken over, requeued)."""


async def _while_held(
    ctx: ProcessContext, task_id: uuid.UUID, worker: str, work: Coroutine[Any, Any, T]
) -> T:
    """Awaits `work` while `worker` holds the task. As soon as the task is no longer this
    worker's, cancels it (its pipeline process ends, so the core is free at once) and raises
    ClaimLost: whoever took the task (a cancel, a takeover, the recovery job) settles it."""
    running = asyncio.ensure_future(work)
    watching = asyncio.create_task(_until_released(ctx, task_id, worker))
    try:
        await asyncio.wait({running, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        lost = not running.done()
        for pending in (running, watching):
            pending.cancel()
        await asyncio.gather(running, watching, return_exceptions=True)
    if lost:
        raise ClaimLost(task_id)
    return running.result()


async def _until_released(ctx: ProcessContext, task_id: uuid.UUID, worker: str) -> None:
    """Returns once the task is not running under `worker` any more. A look that fails (the
    database is away for a moment) is tried again at the next one."""
    while True:
        if ctx.doorbell is None:
            await asyncio.sleep(HOLD_CHECK_SECONDS)
        else:
            cancelled = ctx.doorbell.cancelled
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cancelled.wait(), ctx.settings.worker_poll_seconds)
            cancelled.clear()  # the look below answers this ring
        try:
            async with ctx.read_sessions() as session:
                held = await TaskRepository.from_session(session).is_held_by(task_id, worker)
        except Exception:
            log.warning("task %s: could not check who holds it", task_id, exc_info=True)
            continue
        if not held:
            return


async def release(ctx: ProcessContext, task_id: uuid.UUID, worker: str) -> bool:
    """Puts a task this worker holds back in the queue (to be run again, attempts counted)."""
    async with unit_of_work(ctx) as session:
        repo = TaskRepository.from_session(session)
        released = await repo.requeue(task_id, worker, utcnow())
        task = await repo.get(task_id) if released else None
        if task is not None:
            announce(session, _event(task, QUEUED, 0, "requeued", worker, task.attempts))
            requeued_after_commit(session, [task])
    return released


async def _store_result(
    ctx: ProcessContext,
    claim: ClaimedTask,
    worker: str,
    encoded: Mapping[str, EncodedImage],
) -> Outcome:
    task_id = claim.task_id
    outputs = []
    for position, (name, image) in enumerate(encoded.items()):
        # One key per attempt: an attempt that lost its claim never deletes the winner's file.
        stem = f"results/{task_id}-{claim.attempt}-{name}"
        key = await _stored(ctx, stem, image)
        alternates = [
            {
                "format": alternate.format,
                "content_type": alternate.content_type,
                "bytes": len(alternate.data),
                "key": await _stored(ctx, stem, alternate),
            }
            for alternate in image.alternates
        ]
        placeholder = image.placeholder
        outputs.append(
            TaskOutput(
                task_id=task_id,
                name=name,
                position=position,
                key=key,
                format=image.format,
                content_type=image.content_type,
                width=image.width,
                height=image.height,
                bytes=len(image.data),
                alternates=alternates or None,
                placeholder=placeholder.value if placeholder else None,
                dominant_color=placeholder.dominant_color if placeholder else None,
            )
        )
    async with unit_of_work(ctx) as session:
        stored = await settle_succeeded(session, task_id, worker, outputs, ctx.retention)
    if stored is None:
        # Cancelled (or taken over) while running: the results belong to nobody.
        for output in outputs:
            for key in output.stored_keys():
                await ctx.storage.delete(key)
        return "discarded"
    return "succeeded"


async def _stored(ctx: ProcessContext, stem: str, image: EncodedImage) -> str:
    key = f"{stem}.{OUTPUT_FORMATS[image.format].extension}"
    await ctx.storage.put(key, image.data)
    return key
