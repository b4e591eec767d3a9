"""The Celery tasks: thin drivers that take ids, run the shared task code and upkeep jobs in the
worker process's runtime, and retry only what a retry can fix."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Celery, Task

from pixelfleet.context import ProcessContext
from pixelfleet.jobs import maintenance
from pixelfleet.jobs.processing import process_task, release
from pixelfleet.mail.outbox import send_due_mail
from pixelfleet.observability import log_context
from pixelfleet.webhooks.delivery import deliver_due
from pixelfleet.worker.names import (
    DELIVER_WEBHOOKS,
    FAIL_OVERDUE_TASKS,
    FORGET_EXPIRED_LOGINS,
    PROCESS_TASK,
    PURGE_EXPIRED_FILES,
    RECOVER_STALE_TASKS,
    REDISPATCH_STALE_TASKS,
    SEND_MAIL,
    celery_worker_name,
    holder_stopped,
)
from pixelfleet.worker.runtime import WorkerRuntime
from pixelfleet.worker.transient import MAX_TRANSIENT_RETRIES, is_transient, retry_delay

log = logging.getLogger(__name__)


class TaskFailed(Exception):
    """A PixelFleet task that ended `failed` (settled and refunded already): raised so that
    Celery records a failure too, and `celery events`, Flower and PixelFleet agree."""


class TaskDiscarded(Exception):
    """A PixelFleet task cancelled while this worker ran it: its result was thrown away."""


# How a run's outcome ends the Celery task: a failure (no retry, logged without a traceback:
# `throws`), or a success for the rest (done, or nothing to do here).
_CELERY_FAILURES: dict[str, type[Exception]] = {"failed": TaskFailed, "discarded": TaskDiscarded}


def register_tasks(app: Celery, runtime: WorkerRuntime) -> None:
    @app.task(
        name=PROCESS_TASK,
        bind=True,
        max_retries=MAX_TRANSIENT_RETRIES,
        throws=tuple(_CELERY_FAILURES.values()),
    )
    def process(self: Task[Any, Any], task_id: str) -> str:
        try:
            task_uuid = uuid.UUID(task_id)
        except ValueError:
            log.error("dropping a message with a malformed task id %r", task_id)
            return "invalid"
        worker = celery_worker_name()

        async def run(ctx: ProcessContext) -> str:
            return await process_task(ctx, task_uuid, worker, take_over=holder_stopped)

        with log_context.scope(task_id=task_uuid, **_sender_fields(self)):
            try:
                outcome = runtime.run(run)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("task %s: transient failure (%s); retrying", task_id, exc)
                _release_quietly(runtime, task_uuid, worker)
                raise self.retry(exc=exc, countdown=retry_delay(self.request.retries)) from exc
            log.info("task %s finished as %s", task_id, outcome)
            failure = _CELERY_FAILURES.get(outcome)
            if failure is not None:
                raise failure(f"task {task_id} {outcome}")
            return outcome

    def upkeep(name: str, job: Any) -> None:
        @app.task(name=name, ignore_result=True)
        def run_upkeep() -> int:
            return int(runtime.run(job))

    upkeep(REDISPATCH_STALE_TASKS, maintenance.redispatch_stale_tasks)
    upkeep(RECOVER_STALE_TASKS, maintenance.recover_stale_tasks)
    upkeep(FAIL_OVERDUE_TASKS, maintenance.fail_overdue_tasks)
    upkeep(PURGE_EXPIRED_FILES, maintenance.purge_expired_files)
    upkeep(FORGET_EXPIRED_LOGINS, maintenance.forget_expired_logins)
    upkeep(SEND_MAIL, send_due_mail)

    @app.task(name=DELIVER_WEBHOOKS, bind=True, ignore_result=True)
    def deliver_webhooks(self: Task[Any, Any], task_id: str | None = None) -> int:
        """One task's due deliveries (sent when it finishes), or every due one (beat's sweep,
        which also carries the retries)."""
        only = uuid.UUID(task_id) if task_id else None
        with log_context.scope(task_id=only, **_sender_fields(self)):
            return runtime.run(lambda ctx: deliver_due(ctx, task_id=only))


def _sender_fields(task: Task[Any, Any]) -> dict[str, str]:
    """The request id and user that the message's sender had bound (Celery keeps headers it
    does not know in `request.headers`, and puts them back on a retry's message)."""
    return log_context.from_message_headers(task.request.headers or {})


def _release_quietly(runtime: WorkerRuntime, task_id: uuid.UUID, worker: str) -> None:
    """Gives the task back if this worker holds it; if the database is the thing that is down,
    the retry (which may take over its own claim) or the recovery job picks it up."""
    try:
        runtime.run(lambda ctx: release(ctx, task_id, worker))
    except Exception:
        log.info("task %s: could not release it now", task_id, exc_info=True)
