"""The Kopf operator's handlers for ImageJobs: thin drivers over one skeleton (`imagejob_handler`):
parse the spec, bind the job's log context, load its task, run the handler's step, and write
the status the step returns.

- created: send the Celery task (once: a Redis guard survives restarts), phase Queued;
- every `operator_resync_seconds`: repair the status from the database, and delete finished
  ImageJobs past `ttlSecondsAfterFinished`;
- deleted: cancel the task (refunded if it had not started) before the finalizer lets go.
Progress between those comes from the event feed (`event_feed.py`). Each handler run is counted
(`telemetry.py`), and its log lines carry the job's request, task and user.

A failure that can get better (the database, the Kubernetes API or the broker away:
`failures.py`) is retried (`kopf.TemporaryError`); a spec that cannot be read fails for good,
and so does any other failure, shown as a Warning Event on the job (`HandlerFailed`)."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast
from wsgiref.simple_server import WSGIServer

import kopf
from pydantic import ValidationError

from pixelfleet.bootstrap import create_operator_state
from pixelfleet.db import after_commit, unit_of_work
from pixelfleet.jobs import service as jobs_service
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.launchers import DispatchFailed
from pixelfleet.models import Task
from pixelfleet.observability import exposition, log_context
from pixelfleet.operator.admission import (
    NOT_YOURS,
    HeldBack,
    Rejection,
    admit,
    may_name_its_task,
    task_admitted_for,
    task_id_of,
)
from pixelfleet.operator.creditbindings import refresh_spend
from pixelfleet.operator.event_feed import EventFeed
from pixelfleet.operator.failures import RETRY_SECONDS, recoverable
from pixelfleet.operator.resources import (
    FINALIZER,
    FINISHED_PHASES,
    GROUP,
    IMAGEJOB_PLURAL,
    REQUEST_ID_ANNOTATION,
    VERSION,
    ImageJobSpec,
)
from pixelfleet.operator.state import OperatorState
from pixelfleet.operator.status import as_patch, differs, rejected_status, status_of_task
from pixelfleet.operator.telemetry import CREATE, DELETE, IMAGEJOBS, RESYNC, handler_run
from pixelfleet.schema_migrations import schema_state
from pixelfleet.settings import Settings

log = logging.getLogger(__name__)

DISPATCH_GUARD_SECONDS = 7 * 24 * 3600
RESYNC_SECONDS = Settings().operator_resync_seconds


def dispatch_guard(task_id: uuid.UUID) -> str:
    return f"pixelfleet:operator:dispatched:{task_id}"


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    app_settings = Settings()
    if not app_settings.resolved_redis_url:
        raise kopf.PermanentError(
            "the operator needs PIXELFLEET_REDIS_URL (the event stream, the broker)"
        )
    state = create_operator_state(app_settings)
    ctx = state.ctx
    assert ctx.redis is not None
    if await schema_state(ctx.engine) == "behind":
        await ctx.close()
        raise kopf.PermanentError(
            "the database is not migrated to the latest revision: run `pixelfleet migrate` first"
        )
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.WARNING  # our own Events tell the story; Kopf's, trouble
    settings.watching.connect_timeout = 10
    settings.watching.server_timeout = 300
    # A deleted ImageJob keeps its finalizer until its resync timer has exited; when the timer
    # itself deleted it (the TTL), it is still running as the deletion is handled, and Kopf
    # looks again only this often (default 60 s).
    settings.background.cancellation_polling = 2
    try:  # on 0.0.0.0 (Prometheus scrapes the pod's address); port 0: not served
        state.metrics_server = exposition.serve(app_settings.operator_metrics_port, "operator")
    except OSError as exc:
        await _release(state)
        raise kopf.PermanentError(
            f"cannot serve metrics on port {app_settings.operator_metrics_port}: {exc}"
        ) from exc
    state.background.append(asyncio.create_task(EventFeed(state, ctx.redis).run()))
    memo["state"] = state
    log.info("operator started: ImageJobs in %s", state.jobs.namespace)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    state = operator_state(memo)
    for task in state.background:
        task.cancel()
    await asyncio.gather(*state.background, return_exceptions=True)
    await _release(state)


async def _release(state: OperatorState) -> None:
    if state.metrics_server is not None:
        await asyncio.to_thread(_stop_serving, state.metrics_server)
    await state.ctx.close()  # with its launcher: the Celery app and the Kubernetes client


def _stop_serving(server: WSGIServer) -> None:
    server.shutdown()  # returns once the server's thread has left its loop (0.5 s at most)
    server.server_close()


def operator_state(memo: kopf.Memo) -> OperatorState:
    return cast(OperatorState, memo["state"])


# ---- The skeleton every ImageJob handler runs on -----------------------------------------------


class InvalidImageJob(Exception):
    """The ImageJob's spec cannot be read: it will not get better."""


@dataclass(frozen=True)
class ImageJobRun:
    """What a handler's step works on: the job as Kubernetes has it, its spec read, its task."""

    state: OperatorState
    name: str
    body: dict[str, Any]
    spec: ImageJobSpec
    task: Task
    generation: int | None

    @property
    def task_id(self) -> uuid.UUID:
        return self.task.id

    @property
    def namespace(self) -> str | None:
        return _text(self.body.get("metadata", {}).get("namespace"))

    def wanted_status(self) -> dict[str, Any]:
        return as_patch(
            status_of_task(
                self.task, self.generation, self.body.get("status"), self.state.ctx.result_urls
            )
        )


ImageJobStep = Callable[[ImageJobRun], Awaitable[dict[str, Any] | None]]
KopfHandler = Callable[..., Coroutine[Any, Any, None]]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@contextmanager
def about_imagejob(meta: kopf.Meta, spec: kopf.Spec) -> Iterator[None]:
    """Binds the job's request, task and user for the block: its log lines carry them, and so
    does the Celery message it sends (the request id)."""
    request_id = _text(meta.annotations.get(REQUEST_ID_ANNOTATION))
    with log_context.bound(
        request_id=log_context.acceptable_request_id(request_id),
        task_id=_text(spec.get("taskId")),
        user_id=_text(spec.get("userId")),
    ):
        yield


def parse_spec(spec: kopf.Spec) -> ImageJobSpec:
    try:
        return ImageJobSpec.model_validate(dict(spec))  # its taskId is a uuid
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise InvalidImageJob(f"Invalid ImageJob spec: {problems}") from None


async def load_task(state: OperatorState, task_id: uuid.UUID) -> Task | None:
    try:
        async with state.ctx.read_sessions() as session:
            return await TaskRepository.from_session(session).get(task_id)
    except Exception as exc:
        raise _retried_or_failed("read the task", exc) from exc


def _retried_or_failed(what: str, exc: Exception) -> kopf.TemporaryError | kopf.PermanentError:
    """What Kopf is told of a failure: try again later if it can get better, else give up."""
    if recoverable(exc):
        return kopf.TemporaryError(f"Could not {what}: {exc}", delay=RETRY_SECONDS)
    return kopf.PermanentError(f"Could not {what}: {type(exc).__name__}: {exc}")


def imagejob_handler(
    handler: str,
    *,
    invalid: Literal["refuse", "ignore"],
    missing_task: Literal["refuse", "ignore"] = "refuse",
    admits: bool = False,
) -> Callable[[ImageJobStep], KopfHandler]:
    """Runs a handler's step over the skeleton. A spec that cannot be read is `refuse`d (said in
    the status and an Event, then failed for good) or `ignore`d (nothing to do); so is a job
    whose task PixelFleet does not know (refused when it is created, then left alone). A job
    applied by hand has no task until it is admitted: the handler that `admits` admits it (or
    rejects it), the others leave it alone until then. The status the step returns is written
    to the job. `functools.wraps` keeps the step's name, which Kopf uses as the handler's id."""

    def decorate(step: ImageJobStep) -> KopfHandler:
        @functools.wraps(step)
        async def run(
            body: kopf.Body,
            spec: kopf.Spec,
            meta: kopf.Meta,
            patch: kopf.Patch,
            memo: kopf.Memo,
            **_: Any,
        ) -> None:
            state = operator_state(memo)
            name = str(meta.get("name"))
            generation = meta.get("generation")
            with handler_run(IMAGEJOBS, handler), about_imagejob(meta, spec):
                try:
                    parsed = parse_spec(spec)
                except InvalidImageJob as refusal:
                    if invalid == "ignore":
                        return
                    await _refuse(state, body, "InvalidSpec", str(refusal))
                    raise kopf.PermanentError(str(refusal)) from None
                where = (str(meta.get("namespace")), name)
                if not may_name_its_task(parsed, where, state.jobs.namespace):
                    if invalid == "ignore":
                        return  # not a task of this job's to touch
                    await _refuse(state, body, "InvalidSpec", NOT_YOURS)
                    raise kopf.PermanentError(NOT_YOURS)
                task_id = task_id_of(parsed, dict(body.get("status") or {}))
                if task_id is None and not admits:
                    # Admitted before its status said so (a deletion, a resync): its key knows.
                    task_id = await _task_admitted_for(state, meta)
                    if task_id is None:
                        return  # rejected, or its admission is still to come
                if task_id is None:
                    task = await _admitted(state, body, parsed, patch)
                    if task is None:
                        return
                else:
                    found = await load_task(state, task_id)
                    if found is None:
                        if missing_task == "ignore":
                            return
                        unknown = f"PixelFleet has no task {task_id}."
                        await _refuse(state, body, "TaskNotFound", unknown)
                        raise kopf.PermanentError(unknown)
                    task = found
                job = ImageJobRun(state, name, dict(body), parsed, task, generation)
                try:
                    wanted = await step(job)
                except (kopf.TemporaryError, kopf.PermanentError):
                    raise
                except Exception as exc:
                    await _report_failure(state, body, handler, exc)
                    raise _retried_or_failed(handler, exc) from exc
                if wanted is not None:
                    patch.status.update(wanted)

        return run

    return decorate


async def _task_admitted_for(state: OperatorState, meta: kopf.Meta) -> uuid.UUID | None:
    try:
        return await task_admitted_for(state, str(meta.get("uid")))
    except Exception as exc:
        raise _retried_or_failed("look the job's task up", exc) from exc


async def _announce(
    state: OperatorState, body: kopf.Body, kind: str, reason: str, text: str
) -> None:
    """An Event about the job, best effort: its status says the same."""
    try:
        await state.jobs.post_event(dict(body), kind, reason, text)
    except Exception:
        log.warning("could not post %s about %s", reason, body.get("metadata", {}).get("name"))


async def _admitted(
    state: OperatorState, body: kopf.Body, spec: ImageJobSpec, patch: kopf.Patch
) -> Task | None:
    """The task of a job applied by hand, made now (or before, by an earlier run of this
    handler); None when the job is rejected (said in its status and an Event)."""
    try:
        task, bound = await admit(state, dict(body.get("metadata") or {}), spec)
    except Rejection as rejection:
        log.warning("%s rejected: %s", body.get("metadata", {}).get("name"), rejection)
        await _announce(state, body, "Warning", rejection.reason, rejection.message)
        generation = body.get("metadata", {}).get("generation")
        patch.status.update(
            as_patch(
                rejected_status(
                    rejection.reason, rejection.message, generation, body.get("status")
                )
            )
        )
        return None
    except HeldBack as held:
        await _announce(state, body, "Normal", "HeldBack", f"{held} (tried again shortly)")
        raise
    except (kopf.TemporaryError, kopf.PermanentError):
        raise
    except Exception as exc:
        raise _retried_or_failed("admit the job", exc) from exc
    await _announce(
        state,
        body,
        "Normal",
        "Admitted",
        f"task {task.id}: {task.cost} credits charged to CreditBinding {bound.binding}",
    )
    await refresh_spend(state, bound.binding)
    return task


async def _refuse(state: OperatorState, body: kopf.Body, reason: str, message: str) -> None:
    """Says where `kubectl get` and `kubectl describe` show it why the job is given up: the
    Event first, so that whoever sees the job Failed (or, applied by hand, Rejected) also finds
    its reason."""
    metadata = body.get("metadata", {})
    log.warning("%s refused: %s", metadata.get("name"), message)
    await _announce(state, body, "Warning", reason, message)
    status: dict[str, Any] = {"phase": "Failed", "message": message}
    if not body.get("spec", {}).get("taskId"):
        status = as_patch(
            rejected_status(reason, message, metadata.get("generation"), body.get("status"))
        )
    # Written at once: the handler fails for good right after.
    await state.jobs.patch_status(str(metadata.get("name")), status, metadata.get("namespace"))


async def _report_failure(
    state: OperatorState, body: kopf.Body, handler: str, exc: Exception
) -> None:
    """An unexpected failure shows on the job (`kubectl describe`) before Kopf retries it."""
    try:
        await state.jobs.post_event(
            dict(body), "Warning", "HandlerFailed", f"{handler}: {type(exc).__name__}: {exc}"
        )
    except Exception:
        log.warning("could not post the failure of %s as an Event", handler, exc_info=True)


# ---- The handlers ------------------------------------------------------------------------------


@kopf.on.create(GROUP, VERSION, IMAGEJOB_PLURAL)
@imagejob_handler(CREATE, invalid="refuse", admits=True)
async def dispatch_imagejob(job: ImageJobRun) -> dict[str, Any]:
    # A job applied by hand was sent as its task was admitted (after that commit); a task
    # waiting its turn (fair sharing) is sent when it is handed out.
    task = job.task
    if task.status == "queued" and task.resource_name is None and task.dispatched_at is not None:
        await _send_once(job.state, task)
    return job.wanted_status()


async def _send_once(state: OperatorState, task: Task) -> None:
    """Sends the Celery task unless this operator (or an earlier run of it) already did. A
    second send would be harmless, but a restart should not cost one for every job."""
    assert state.ctx.redis is not None
    guard = dispatch_guard(task.id)
    if not await state.ctx.redis.set(guard, "1", nx=True, ex=DISPATCH_GUARD_SECONDS):
        return
    try:
        await state.celery.dispatch(task)
    except DispatchFailed:
        await state.ctx.redis.delete(guard)  # the next try sends it
        raise
    log.info("task %s sent to the workers (queue %s)", task.id, task.queue or state.celery.queue)


@kopf.timer(GROUP, VERSION, IMAGEJOB_PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
@imagejob_handler(RESYNC, invalid="ignore", missing_task="ignore")
async def resync_imagejob(job: ImageJobRun) -> dict[str, Any] | None:
    wanted = job.wanted_status()
    ttl = job.spec.ttl_seconds_after_finished
    if wanted["phase"] in FINISHED_PHASES and _expired(job.task, ttl):
        log.info("deleting %s: finished longer ago than its TTL", job.name)
        await job.state.jobs.delete(job.name, job.namespace)
    current = dict(job.body.get("status") or {})
    # A succeeded job's URLs are signed again once past half their lifetime.
    return wanted if differs(current, wanted, job.state.ctx.result_urls) else None


def _expired(task: Task, ttl_seconds: int | None) -> bool:
    if ttl_seconds is None or task.finished_at is None:
        return False
    return datetime.now(UTC) >= task.finished_at + timedelta(seconds=ttl_seconds)


@kopf.on.delete(GROUP, VERSION, IMAGEJOB_PLURAL)
@imagejob_handler(DELETE, invalid="ignore", missing_task="ignore")
async def cancel_imagejob(job: ImageJobRun) -> None:
    state, task_id = job.state, job.task_id

    async def revoke(_ctx: object) -> None:
        # A worker that has the message already drops it; the claim would refuse it anyway.
        await state.celery.revoke(task_id)

    try:
        # Its event, its webhook send and the revocation go out once the cancel commits.
        async with unit_of_work(state.ctx) as session:
            cancelled = await jobs_service.cancel_task_by_id(session, task_id, state.ctx.retention)
            if cancelled is not None:
                log.info("task %s cancelled: its ImageJob was deleted", task_id)
                after_commit(session, revoke)
    except Exception as exc:
        raise _retried_or_failed(f"cancel task {task_id}", exc) from exc
