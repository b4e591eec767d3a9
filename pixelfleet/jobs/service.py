"""Submitting, reading, listing and cancelling tasks; the rules of their lifecycle."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.accounts import repository as account_rows
from pixelfleet.accounts.tokens import AccessClaims
from pixelfleet.assets import service as assets
from pixelfleet.client_text import refuse_unsafe_json
from pixelfleet.credits import budgets
from pixelfleet.credits import service as credits
from pixelfleet.credits.errors import InsufficientCredits
from pixelfleet.credits.pricing import OutputCharge, price_task
from pixelfleet.db import utcnow
from pixelfleet.errors import FieldError, InvalidInput
from pixelfleet.imaging.codecs import SourceInfo, sniff
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.plan import Plan, prepare
from pixelfleet.imaging.spec import Pipeline, parse_pipeline
from pixelfleet.jobs import fair_dispatch, metrics
from pixelfleet.jobs.dispatching import dispatch_after_commit, held_after_commit
from pixelfleet.jobs.errors import (
    IdempotencyKeyReused,
    TaskAlreadyFinished,
    TaskNotFound,
)
from pixelfleet.jobs.placement import DEFAULT_PLACEMENT, Budget, Placement
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.jobs.schemas import ProgressEvent, TaskOut, TaskPage
from pixelfleet.jobs.settlement import settle_cancelled
from pixelfleet.jobs.states import ALL_STATES, QUEUED
from pixelfleet.models import IdempotencyKey, Task, User
from pixelfleet.pagination import decode_time_cursor, encode_time_cursor, page_of
from pixelfleet.presets import service as presets
from pixelfleet.presets.errors import PresetNotFound
from pixelfleet.quotas import AccountQuotas, hold_active_account, require_active_account
from pixelfleet.sources.schemas import UPLOADED_WITH_THE_TASK, SourceOrigin
from pixelfleet.storage import StagedObject, Storage
from pixelfleet.webhooks.targets import check_callback_url

MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class Submission:
    task: Task
    created: bool


def _request_fingerprint(upload: bytes, pipeline: Pipeline, callback_url: str | None) -> str:
    digest = hashlib.sha256(upload)
    digest.update(b"\0")
    digest.update(json.dumps(pipeline.model_dump(mode="json"), sort_keys=True).encode("utf-8"))
    if callback_url is not None:  # absent, it leaves the fingerprints stored before it existed
        digest.update(b"\0callback_url\0" + callback_url.encode("utf-8"))
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


def _preset_requested(raw_pipeline: str | Mapping[str, Any]) -> str | None:
    """The preset name when the pipeline is `{"preset": NAME}`, else None. A form's pipeline
    field is JSON inside a form field, so its strings are held to the rule for client text here,
    where they are decoded (the API's edge sees only the JSON text)."""
    if isinstance(raw_pipeline, str):
        try:
            document = json.loads(raw_pipeline)
        except (ValueError, RecursionError):
            return None  # parse_pipeline explains what is wrong with it
    else:
        document = raw_pipeline
    refuse_unsafe_json(document, "pipeline")
    if not isinstance(document, dict) or "preset" not in document:
        return None
    name = document["preset"]
    if len(document) != 1 or not isinstance(name, str):
        raise InvalidInput(
            'A preset is submitted alone: {"preset": "NAME"}.',
            errors=[FieldError("pipeline.preset", "must be the only field, a preset name")],
        )
    return name


async def _resolve_pipeline(
    session: AsyncSession, user: User, raw_pipeline: str | Mapping[str, Any], limits: ImageLimits
) -> Pipeline:
    preset = _preset_requested(raw_pipeline)
    if preset is None:
        pipeline = parse_pipeline(raw_pipeline, limits)
    else:
        try:
            pipeline = await presets.pipeline_of(session, user, preset, limits)
        except PresetNotFound as exc:
            raise InvalidInput(
                exc.detail, errors=[FieldError("pipeline.preset", "no preset with this name")]
            ) from exc
    await assets.check_owned(session, user, pipeline.asset_ids())
    return pipeline


def price_of(plan: Plan) -> int:
    """What the planned task costs (its shared operations, then each output)."""
    charges = [
        OutputCharge(
            format=output.format,
            operations=output.operations,
            size_target=output.size_target,
            frames=output.frames,
        )
        for output in plan.outputs
    ]
    return price_task(plan.shared_operations, charges, plan.source.pixels)


@dataclass(frozen=True)
class Quote:
    """What a task would cost and make, foreseen from its image's header and its pipeline."""

    cost: int
    plan: Plan


async def _planned(
    session: AsyncSession,
    user: User,
    source: SourceInfo,
    raw_pipeline: str | Mapping[str, Any],
    limits: ImageLimits,
) -> tuple[Plan, int]:
    """The plan of a task on `source` and its price: what a quote says and a submission
    charges (the one place both are worked out)."""
    pipeline = await _resolve_pipeline(session, user, raw_pipeline, limits)
    plan = prepare(source, pipeline, limits)  # refuses impossible work up front
    return plan, price_of(plan)


async def quote_task(
    session: AsyncSession,
    user: User,
    upload: StagedObject,
    raw_pipeline: str | Mapping[str, Any],
    limits: ImageLimits,
) -> Quote:
    """The exact price and the predicted outputs of the task these would submit, from the
    image's header alone (no pixel decoded); nothing is stored or charged. The same refusals as
    a submission (image limits, an invalid pipeline, impossible work), except the balance."""
    source = sniff(upload.read(), limits)
    plan, cost = await _planned(session, user, source, raw_pipeline, limits)
    return Quote(cost, plan)


def source_key_of(task_id: uuid.UUID) -> str:
    """Where a task's source image is stored."""
    return f"sources/{task_id}"


async def submit_task(
    session: AsyncSession,
    storage: Storage,
    user: User,
    upload: StagedObject,
    raw_pipeline: str | Mapping[str, Any],
    limits: ImageLimits,
    quotas: AccountQuotas,
    *,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
    allow_private_callback: bool = False,
    origin: SourceOrigin = UPLOADED_WITH_THE_TASK,
    api_key_id: uuid.UUID | None = None,
    placement: Placement = DEFAULT_PLACEMENT,
    dispatch_ahead: int,
) -> Submission:
    """Validates the upload and pipeline, stores the upload (staged in `storage` as it arrived),
    debits the cost and queues the task, all in the caller's transaction; the task is
    dispatched to the workers once that transaction commits (`db.after_commit`). The same key
    with the same request returns the first task. A `callback_url` (an empty one counts as
    none) receives the task's final event. A new task must fit in the account's
    `max_active_tasks_per_user` (a replay is never refused by it). `origin` is how the image
    came (a file in the request, unless the submission named a source); `api_key_id` the API
key that submits it (None for an interactive login), recorded for usage by key;
    `placement` where it runs and what bounds it (a budget it must fit in is weighed while
    the account's row is held); `dispatch_ahead` how many tasks of its queue may be handed to
    the workers ahead of their start before it waits its turn (`jobs.fair_dispatch`).

    The header sniff and the upload's store come before the first query, so the transaction
    (on SQLite, the write lock) lasts only for the rows it reads and writes. A refused upload
    is never stored (the caller discards what was staged)."""
    _check_idempotency_key(idempotency_key)
    if callback_url:
        check_callback_url(callback_url, allow_private_targets=allow_private_callback)
    callback_url = callback_url or None
    data = upload.read()
    source = sniff(data, limits)
    task_id = uuid.uuid4()
    source_key = source_key_of(task_id)
    await upload.store(source_key)
    try:
        plan, cost = await _planned(session, user, source, raw_pipeline, limits)
        pipeline = plan.pipeline
        if user.balance < cost and idempotency_key is None:
            raise InsufficientCredits.for_cost(cost)
        task = Task(
            id=task_id,
            user_id=user.id,
            api_key_id=api_key_id,
            status=QUEUED,
            progress=0,
            stage="queued",
            cost=cost,
            pipeline=pipeline.model_dump(mode="json"),
            source_key=source_key,
            source_format=source.format,
            source_width=source.width,
            source_height=source.height,
            source_bytes=len(data),
            source_kind=origin.kind,
            source_ref=origin.ref,
            attempts=0,
            outputs=[],
            callback_url=callback_url,
            dispatched_at=utcnow(),  # dispatched right after the commit, unless it waits its turn
            **_placed(placement),
        )
        # Only a keyed request is ever compared with another: hash the upload only then.
        fingerprint = (
            _request_fingerprint(data, pipeline, callback_url) if idempotency_key else ""
        )
        submission = await _record_submission(
            session,
            user,
            task,
            idempotency_key,
            fingerprint,
            quotas,
            placement.budget,
            dispatch_ahead,
        )
    except BaseException:
        await storage.delete(source_key)
        raise
    if not submission.created:  # a replay answers with the first task and its upload
        await storage.delete(source_key)
    return submission


def _placed(placement: Placement) -> dict[str, Any]:
    """The task's columns that `placement` sets."""
    deadline = placement.active_deadline_seconds
    backoff = placement.backoff_limit
    return {
        "queue": placement.queue,
        "priority": placement.priority,
        "budget": placement.budget.name if placement.budget else None,
        "resource_name": placement.resource_name,
        "deadline_at": utcnow() + timedelta(seconds=deadline) if deadline is not None else None,
        "max_attempts": backoff + 1 if backoff is not None else None,
    }


async def _record_submission(
    session: AsyncSession,
    user: User,
    task: Task,
    key: str | None,
    fingerprint: str,
    quotas: AccountQuotas,
    budget: Budget | None,
    dispatch_ahead: int,
) -> Submission:
    if key is None:
        await _record_new_task(session, user, task, quotas, budget, dispatch_ahead)
        return Submission(task, created=True)
    # Held before the replay is looked for: a request racing its own retry sees the first
    # one's task once it holds the account, and is answered with it rather than counted.
    await hold_active_account(session, user.id)
    replay = await _replay(session, user, key, fingerprint)
    if replay is not None:
        return replay
    repo = TaskRepository.from_session(session)
    quotas.require_room(
        "max_active_tasks_per_user", usage=await repo.count_active_for_user(user.id)
    )
    if budget is not None:
        await budgets.require_room(session, budget, task.cost)
    await _take_turn(session, task, dispatch_ahead)
    try:
        async with session.begin_nested():
            await repo.add(task)
            await credits.debit_for_task(session, user.id, task.id, task.cost)
            await repo.add_idempotency_key(
                IdempotencyKey(user_id=user.id, key=key, request_hash=fingerprint, task_id=task.id)
            )
    except IntegrityError:
        # Another request with the same key committed first: answer as it did.
        replay = await _replay(session, user, key, fingerprint)
        if replay is None:
            raise
        return replay
    _queue_after_commit(session, task)
    return Submission(task, created=True)


async def _record_new_task(
    session: AsyncSession,
    user: User,
    task: Task,
    quotas: AccountQuotas,
    budget: Budget | None,
    dispatch_ahead: int,
) -> None:
    """A submission without a key has no earlier request to be answered as, so no conflict to
    recover from: its writes go straight into the caller's transaction, which a refusal rolls
    back whole. The debit's UPDATE holds the account's row (`hold_account`'s lock, taken by
    the write itself) before the active tasks are counted: two submissions at once are counted
    one after the other (a budget is weighed with the row held first)."""
    repo = TaskRepository.from_session(session)
    if budget is not None:
        await hold_active_account(session, user.id)
        await budgets.require_room(session, budget, task.cost)
    await _take_turn(session, task, dispatch_ahead)
    await repo.add(task)
    await credits.debit_for_task(session, user.id, task.id, task.cost)
    await require_active_account(session, user.id)  # not erased while the upload came in
    active = await repo.count_active_for_user(user.id)
    quotas.require_room("max_active_tasks_per_user", usage=active - 1)  # the new task is one
    _queue_after_commit(session, task)


async def _take_turn(session: AsyncSession, task: Task, dispatch_ahead: int) -> None:
    """Before the task is written: handed out at once (its `dispatched_at` stays), or left to
    wait its turn (fair sharing)."""
    if not await fair_dispatch.hand_out_at_once(session, task.queue, dispatch_ahead):
        task.dispatched_at = None


def _queue_after_commit(session: AsyncSession, task: Task) -> None:
    metrics.count_submitted(session, task.source_bytes)
    if task.dispatched_at is not None:
        dispatch_after_commit(session, [task])
    else:
        held_after_commit(session, task)
        fair_dispatch.release_after_commit(session, task.queue)


async def get_task(session: AsyncSession, user: User, task_id: uuid.UUID) -> Task:
    task = await TaskRepository.from_session(session).get_for_user(task_id, user.id)
    if task is None:
        raise TaskNotFound(f"No task {task_id} exists for this account.")
    return task


async def read_task(
    session: AsyncSession,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    *,
    token: AccessClaims | None = None,
) -> TaskOut:
    """The user's task as they read it, in one statement (no entity: for readers only). With
    the `token` they read it by, the same statement checks that their account still honours it
    (and finds nothing otherwise: `accounts.caller_for_credential` tells why)."""
    only_if = None if token is None else account_rows.honours(token)
    view = await TaskRepository.from_session(session).task_view(task_id, user_id, only_if=only_if)
    if view is None:
        raise TaskNotFound(f"No task {task_id} exists for this account.")
    return TaskOut.from_task(view)


async def list_tasks(
    session: AsyncSession, user: User, *, status: str | None, cursor: str | None, limit: int
) -> TaskPage:
    if status is not None and status not in ALL_STATES:
        raise InvalidInput(
            f"Unknown status {status!r}.",
            errors=[FieldError("status", f"must be one of {', '.join(ALL_STATES)}")],
        )
    after = decode_time_cursor(cursor) if cursor else None
    tasks = await TaskRepository.from_session(session).page_views_for_user(
        user.id, status=status, after=after, limit=limit + 1
    )
    page = page_of(tasks, limit, lambda task: encode_time_cursor(task.created_at, task.id))
    return TaskPage(items=[TaskOut.from_task(t) for t in page.items], next_cursor=page.next_cursor)


async def progress_of(session: AsyncSession, user: User, task_id: uuid.UUID) -> ProgressEvent:
    progress = await TaskRepository.from_session(session).progress_for_user(task_id, user.id)
    if progress is None:
        raise TaskNotFound(f"No task {task_id} exists for this account.")
    return ProgressEvent.from_task(progress)


async def cancel_task(
    session: AsyncSession, user: User, task_id: uuid.UUID, retention: timedelta
) -> Task:
    """Cancels a queued task (refunded) or a running one (its result is discarded, not refunded)."""
    task = await get_task(session, user, task_id)
    cancelled = await settle_cancelled(session, task.id, retention)
    if cancelled is None:
        raise TaskAlreadyFinished(f"Task {task_id} has already finished as {task.status}.")
    return cancelled


async def cancel_task_by_id(
    session: AsyncSession, task_id: uuid.UUID, retention: timedelta
) -> Task | None:
    """Cancels a task on the platform's behalf (its ImageJob was deleted): the same rules as
    `cancel_task`; None when it had already finished (or does not exist)."""
    return await settle_cancelled(session, task_id, retention)
