"""The task metrics, recorded where tasks are written and run.

What a transaction writes (a task accepted, started or finished, its results stored) is counted
only once that transaction commits (`pixelfleet.db.when_committed`), so services that never
commit (submission, cancellation) count all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.db import when_committed
from pixelfleet.jobs.repository import ClaimedTask
from pixelfleet.jobs.stage_clock import StepTime
from pixelfleet.observability.metrics import (
    BYTES_PRODUCED,
    BYTES_RECEIVED,
    ENCODE_SECONDS,
    OPERATION_SECONDS,
    SOURCE_MEGAPIXELS,
    TASK_QUEUE_SECONDS,
    TASK_RUN_SECONDS,
    TASKS_FINISHED,
    TASKS_SUBMITTED,
)

log = logging.getLogger(__name__)

FinalOutcome = Literal["succeeded", "failed", "cancelled"]


def count_submitted(session: AsyncSession, upload_bytes: int) -> None:
    """A task accepted and debited, with its upload's size."""

    def count() -> None:
        TASKS_SUBMITTED.inc()
        BYTES_RECEIVED.inc(upload_bytes)

    when_committed(session, count)


def count_started(session: AsyncSession, claimed: ClaimedTask) -> None:
    """A worker's claim of a task. The queue time is observed on the first attempt only: a
    re-run or take-over measures how long recovery took, not how long the queue was."""
    if claimed.attempt != 1:
        return
    waited = _seconds_between(claimed.created_at, claimed.started_at)
    when_committed(session, lambda: TASK_QUEUE_SECONDS.observe(waited))


def count_finished(
    session: AsyncSession,
    outcome: FinalOutcome,
    started_at: datetime | None,
    finished_at: datetime,
) -> None:
    """A task written in its final state. `started_at` is the start of the attempt that was
    running (None for a task that was not running, such as a queued task cancelled)."""
    run = None if started_at is None else _seconds_between(started_at, finished_at)

    def count() -> None:
        TASKS_FINISHED.labels(outcome).inc()
        if run is not None:
            TASK_RUN_SECONDS.labels(outcome).observe(run)

    when_committed(session, count)


def count_stored_outputs(session: AsyncSession, outputs: Iterable[tuple[str, int]]) -> None:
    """The (format, bytes) of each result a task keeps."""
    stored = list(outputs)

    def count() -> None:
        for output_format, size in stored:
            BYTES_PRODUCED.labels(output_format).inc(size)

    when_committed(session, count)


def record_pipeline_run(steps: Iterable[StepTime], source_pixels: int) -> None:
    """A pipeline that ran to its end: each step's time and the source's size."""
    for step in steps:
        histogram = OPERATION_SECONDS if step.step == "operation" else ENCODE_SECONDS
        histogram.labels(step.label).observe(step.seconds)
    SOURCE_MEGAPIXELS.inc(source_pixels / 1e6)


def _seconds_between(start: datetime, end: datetime) -> float:
    # Clocks of different hosts wrote the two times: never a negative duration.
    return max(0.0, (end - start).total_seconds())
