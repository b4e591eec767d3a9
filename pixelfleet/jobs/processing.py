"""Running one task: claim it, run its pipeline, store the result, settle its credits.

This is the task code every launcher runs (the embedded worker now, Celery workers later), and
so the task's transaction boundary: each step commits on its own. It is idempotent: a task
that is not `queued` any more is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from pixelfleet.assets import service as assets
from pixelfleet.context import ProcessContext
from pixelfleet.credits import service as credits
from pixelfleet.db import utcnow
from pixelfleet.errors import PixelFleetError
from pixelfleet.imaging.codecs import OUTPUT_FORMATS, EncodedImage
from pixelfleet.imaging.pipeline import Pipeline, run_pipeline
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.jobs.states import RUNNING
from pixelfleet.models import TaskOutput
from pixelfleet.storage import StoredObjectMissing

log = logging.getLogger(__name__)

Outcome = Literal["skipped", "succeeded", "failed", "requeued", "discarded"]

PROGRESS_FLUSH_SECONDS = 0.25
# Longest silence before the worker says it is alive anyway (a long AVIF encode, say).
MAX_HEARTBEAT_SECONDS = 10.0


@dataclass
class _ProgressBox:
    """Latest progress reported by the pipeline thread, read by the event loop."""

    stage: str = "starting"
    percent: int = 0


async def _report_progress(
    ctx: ProcessContext, task_id: uuid.UUID, worker: str, box: _ProgressBox, done: asyncio.Event
) -> None:
    """Writes progress when it changes, and a heartbeat at least every few seconds, so that
    the recovery job never takes a busy worker for a lost one. Never fails the task."""
    heartbeat = min(MAX_HEARTBEAT_SECONDS, ctx.settings.task_stale_seconds / 4)
    last: tuple[str, int] = (box.stage, box.percent)  # what the claim already wrote
    last_write = time.monotonic()
    while not done.is_set():
        current = (box.stage, box.percent)
        if current != last or time.monotonic() - last_write >= heartbeat:
            try:
                async with ctx.sessions.begin() as session:
                    await TaskRepository.from_session(session).record_progress(
                        task_id, worker, min(current[1], 99), current[0], utcnow()
                    )
                last, last_write = current, time.monotonic()
            except Exception:
                log.warning("task %s: could not record progress", task_id, exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), PROGRESS_FLUSH_SECONDS)


async def _fail(
    ctx: ProcessContext, task_id: uuid.UUID, worker: str, code: str, message: str
) -> Outcome:
    now = utcnow()
    async with ctx.sessions.begin() as session:
        repo = TaskRepository.from_session(session)
        if not await repo.mark_failed(
            task_id, {RUNNING}, code, message, now, now + ctx.retention, worker=worker
        ):
            return "discarded"
        task = await repo.get(task_id)
        assert task is not None
        await credits.refund_task(session, task.user_id, task.id, task.cost, f"failed: {code}")
    log.info("task %s failed: %s", task_id, code)
    return "failed"


async def process_task(ctx: ProcessContext, task_id: uuid.UUID, worker: str) -> Outcome:
    async with ctx.sessions.begin() as session:
        repo = TaskRepository.from_session(session)
        if not await repo.claim(task_id, worker, utcnow()):
            return "skipped"
        task = await repo.get(task_id)
        assert task is not None
        attempt, source_key, stored_pipeline = task.attempts, task.source_key, task.pipeline

    try:
        pipeline = Pipeline.model_validate(stored_pipeline)
    except ValidationError:
        return await _fail(
            ctx,
            task_id,
            worker,
            "pipeline-unsupported",
            "This task's pipeline is not one this version can run.",
        )
    try:
        data = await ctx.storage.get(source_key)
    except StoredObjectMissing:
        return await _fail(ctx, task_id, worker, "source-missing", "The uploaded image is gone.")
    async with ctx.read_sessions() as session:
        asset_bytes = await assets.load_asset_bytes(session, ctx.storage, pipeline.asset_ids())

    box = _ProgressBox()
    done = asyncio.Event()

    def report(stage: str, percent: int) -> None:
        box.stage, box.percent = stage, percent

    reporter = asyncio.create_task(_report_progress(ctx, task_id, worker, box, done))
    try:
        encoded = await asyncio.to_thread(
            run_pipeline, data, pipeline, ctx.settings.image_limits, report, asset_bytes
        )
    except PixelFleetError as exc:
        return await _fail(ctx, task_id, worker, exc.slug, exc.detail)
    except Exception as exc:
        log.exception("task %s failed unexpectedly on attempt %d", task_id, attempt)
        if attempt >= ctx.settings.task_max_attempts:
            return await _fail(
                ctx,
                task_id,
                worker,
                "internal-error",
                f"Processing failed after {attempt} attempts: {type(exc).__name__}.",
            )
        async with ctx.sessions.begin() as session:
            await TaskRepository.from_session(session).requeue(task_id, worker, utcnow())
        return "requeued"
    finally:
        done.set()
        await reporter

    return await _store_result(ctx, task_id, worker, attempt, encoded)


async def _store_result(
    ctx: ProcessContext,
    task_id: uuid.UUID,
    worker: str,
    attempt: int,
    encoded: Mapping[str, EncodedImage],
) -> Outcome:
    outputs = []
    for position, (name, image) in enumerate(encoded.items()):
        # One key per attempt: an attempt that lost its claim never deletes the winner's file.
        key = f"results/{task_id}-{attempt}-{name}.{OUTPUT_FORMATS[image.format].extension}"
        await ctx.storage.put(key, image.data)
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
            )
        )
    now = utcnow()
    async with ctx.sessions.begin() as session:
        stored = await TaskRepository.from_session(session).mark_succeeded(
            task_id, worker, now, now + ctx.retention, outputs
        )
    if not stored:
        # Cancelled (or taken over) while running: the results belong to nobody.
        for output in outputs:
            assert output.key is not None
            await ctx.storage.delete(output.key)
        return "discarded"
    return "succeeded"
