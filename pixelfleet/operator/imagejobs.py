"""The Kopf operator's handlers for ImageJobs: thin drivers that validate the resource, call the
services and map the task's record into the resource's status.

- created: send the Celery task (once: a Redis guard survives restarts), phase Queued;
- every `operator_resync_seconds`: repair the status from the database, and delete finished
  ImageJobs past `ttlSecondsAfterFinished`;
- deleted: cancel the task (refunded if it had not started) before the finalizer lets go.
Progress between those comes from the event feed (`event_feed.py`). Each handler run is counted
(`telemetry.py`), and its log lines carry the job's request, task and user."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from wsgiref.simple_server import WSGIServer

import kopf
from pydantic import ValidationError
from redis.exceptions import RedisError

from pixelfleet.context import create_context
from pixelfleet.db import after_commit, unit_of_work
from pixelfleet.jobs import service as jobs_service
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.launchers import DispatchFailed
from pixelfleet.launchers.celery import CeleryLauncher
from pixelfleet.models import Task
from pixelfleet.observability import exposition, log_context
from pixelfleet.operator.cluster import ImageJobs, load_api_client
from pixelfleet.operator.event_feed import EventFeed
from pixelfleet.operator.resources import (
    FINISHED_PHASES,
    GROUP,
    IMAGEJOB_PLURAL,
    REQUEST_ID_ANNOTATION,
    VERSION,
    ImageJobSpec,
)
from pixelfleet.operator.state import OperatorState
from pixelfleet.operator.status import as_patch, differs, status_of_task
from pixelfleet.operator.telemetry import IMAGEJOBS, counted
from pixelfleet.schema_migrations import schema_state
from pixelfleet.settings import Settings
from pixelfleet.worker.celery_config import create_celery

log = logging.getLogger(__name__)

FINALIZER = "pixelfleet.dev/cancel-task"
DISPATCH_GUARD_SECONDS = 7 * 24 * 3600
RESYNC_SECONDS = Settings().operator_resync_seconds


def dispatch_guard(task_id: uuid.UUID) -> str:
    return f"pixelfleet:operator:dispatched:{task_id}"


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    app_settings = Settings()
    ctx = create_context(app_settings)
    if ctx.redis is None:
        await ctx.close()
        raise kopf.PermanentError(
            "the operator needs PIXELFLEET_REDIS_URL (the event stream, the broker)"
        )
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
    state = OperatorState(
        ctx=ctx,
        jobs=ImageJobs(load_api_client(), app_settings.resolved_kubernetes_namespace),
        celery=CeleryLauncher(create_celery(app_settings), app_settings.celery_queue),
    )
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
    await state.celery.close()
    state.jobs.api_client.close()  # type: ignore[no-untyped-call]
    await state.ctx.close()


def _stop_serving(server: WSGIServer) -> None:
    server.shutdown()  # returns once the server's thread has left its loop (0.5 s at most)
    server.server_close()


def operator_state(memo: kopf.Memo) -> OperatorState:
    return cast(OperatorState, memo["state"])


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


def _spec(spec: kopf.Spec) -> ImageJobSpec:
    try:
        return ImageJobSpec.model_validate(dict(spec))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise kopf.PermanentError(f"Invalid ImageJob spec: {problems}") from None


async def _task(state: OperatorState, task_id: uuid.UUID) -> Task:
    try:
        async with state.ctx.read_sessions() as session:
            task = await TaskRepository.from_session(session).get(task_id)
    except Exception as exc:  # the database is away: try again later
        raise kopf.TemporaryError(f"The database is unavailable: {exc}", delay=10) from exc
    if task is None:
        raise kopf.PermanentError(f"PixelFleet has no task {task_id}.")
    return task


@kopf.on.create(GROUP, VERSION, IMAGEJOB_PLURAL)
@counted(IMAGEJOBS, "create")
async def dispatch_imagejob(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    state = operator_state(memo)
    with about_imagejob(meta, spec):
        try:
            parsed = _spec(spec)
        except kopf.PermanentError as refusal:
            # Said where `kubectl get` and `kubectl describe` show it, then given up for good.
            name = str(meta.get("name"))
            log.warning("%s refused: %s", name, refusal)
            await state.jobs.patch_status(name, {"phase": "Failed", "message": str(refusal)})
            await state.jobs.post_event(dict(body), "Warning", "InvalidSpec", str(refusal))
            raise
        task_id = uuid.UUID(parsed.task_id)
        task = await _task(state, task_id)
        if task.status == "queued":
            await _send_once(state, task_id)
        wanted = as_patch(status_of_task(task, meta.get("generation")))
        patch.status.update(wanted)


async def _send_once(state: OperatorState, task_id: uuid.UUID) -> None:
    """Sends the Celery task unless this operator (or an earlier run of it) already did. A
    second send would be harmless, but a restart should not cost one for every job."""
    assert state.ctx.redis is not None
    guard = dispatch_guard(task_id)
    try:
        first = await state.ctx.redis.set(guard, "1", nx=True, ex=DISPATCH_GUARD_SECONDS)
    except (RedisError, OSError) as exc:
        raise kopf.TemporaryError(f"Redis is unavailable: {exc}", delay=5) from exc
    if not first:
        return
    try:
        await state.celery.send(task_id)
    except DispatchFailed as exc:
        await state.ctx.redis.delete(guard)
        raise kopf.TemporaryError(str(exc), delay=5) from exc
    log.info("task %s sent to the workers (queue %s)", task_id, state.celery.queue)


@kopf.timer(GROUP, VERSION, IMAGEJOB_PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
@counted(IMAGEJOBS, "resync")
async def resync_imagejob(
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    state = operator_state(memo)
    with about_imagejob(meta, spec):
        try:
            parsed = _spec(spec)
        except kopf.PermanentError:
            return  # refused when it was created; nothing to keep in sync
        task = await _task(state, uuid.UUID(parsed.task_id))
        wanted = as_patch(status_of_task(task, meta.get("generation")))
        if differs(dict(status), wanted):
            patch.status.update(wanted)
        if wanted["phase"] in FINISHED_PHASES and _expired(task, parsed.ttl_seconds_after_finished):
            log.info("deleting %s: finished longer ago than its TTL", meta.get("name"))
            await state.jobs.delete(str(meta.get("name")))


def _expired(task: Task, ttl_seconds: int | None) -> bool:
    if ttl_seconds is None or task.finished_at is None:
        return False
    return datetime.now(UTC) >= task.finished_at + timedelta(seconds=ttl_seconds)


@kopf.on.delete(GROUP, VERSION, IMAGEJOB_PLURAL)
@counted(IMAGEJOBS, "delete")
async def cancel_imagejob(spec: kopf.Spec, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    state = operator_state(memo)
    with about_imagejob(meta, spec):
        try:
            task_id = uuid.UUID(ImageJobSpec.model_validate(dict(spec)).task_id)
        except ValidationError:
            return  # a job that never named a valid task has nothing to cancel

        async def revoke(_ctx: object) -> None:
            # A worker that has the message already drops it; the claim would refuse it anyway.
            await asyncio.to_thread(state.celery.app.control.revoke, str(task_id))

        try:
            # Its event, its webhook send and the revocation go out once the cancel commits.
            async with unit_of_work(state.ctx) as session:
                cancelled = await jobs_service.cancel_task_by_id(
                    session, task_id, state.ctx.retention
                )
                if cancelled is not None:
                    log.info("task %s cancelled: its ImageJob was deleted", task_id)
                    after_commit(session, revoke)
        except Exception as exc:
            raise kopf.TemporaryError(f"Could not cancel task {task_id}: {exc}", delay=5) from exc
