"""The task metrics, recorded where tasks are written and run.

What a transaction writes (a task accepted, started or finished, its results stored) is counted
only once that transaction commits: `when_committed` holds the count on the session until its
outermost commit and drops it if the transaction (or the savepoint it was made in) rolls back.
That lets services that never commit (submission, cancellation) count all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

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

_PENDING = "pixelfleet.jobs.metrics.pending"
"""The session.info key of the (transaction, action) pairs waiting for the commit."""


def when_committed(session: AsyncSession | Session, action: Callable[[], None]) -> None:
    """Runs `action` after the session's outermost transaction commits; never if the current
    transaction (or savepoint) rolls back or the session closes without committing."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    transaction = sync.get_nested_transaction() or sync.get_transaction()
    if transaction is None:
        raise RuntimeError("no transaction to wait for: call this after the write it counts")
    sync.info.setdefault(_PENDING, []).append((transaction, action))


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _run_committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: what it holds waits for the outer commit
    for _, action in session.info.pop(_PENDING, ()):
        try:
            action()
        except Exception:  # the data is committed; a metric must not turn that into an error
            log.exception("could not record a metric after commit")


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [
            (transaction, action)
            for transaction, action in pending
            if not _within(transaction, previous_transaction)
        ]


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # after its commit ran them, or closed without one
        session.info.pop(_PENDING, None)


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
