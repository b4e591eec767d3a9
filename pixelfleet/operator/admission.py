"""Admits an ImageJob applied by hand (`kubectl apply`, no `spec.taskId`): the namespace's
CreditBinding names the account to charge and a budget; the job's source is staged as the API
stages one, and its task submitted through the same service, so the price, the checks and the
refusals are the API's. The submission's idempotency key is the job's uid: a handler that runs
again (a retry, a restart) finds the task it made rather than charging twice.

What will not get better is a `Rejection` (phase Rejected, nothing charged): no binding, an
account that is not there, a budget or balance too small, a source or pipeline refused. A limit
that passes (429: the account's active tasks, a rate) is tried again later. Any other failure
is the handler's to classify (`failures.py`)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import kopf
from pydantic import ValidationError

from pixelfleet.accounts.email_verification import require_verified
from pixelfleet.accounts.repository import AccountRepository
from pixelfleet.accounts.service import normalise_email
from pixelfleet.db import unit_of_work
from pixelfleet.errors import PixelFleetError, RetryLater
from pixelfleet.jobs import service as jobs_service
from pixelfleet.jobs.placement import Budget, Placement
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.models import Task, User
from pixelfleet.operator.resources import CreditBindingSpec, ImageJobSpec, imagejob_name
from pixelfleet.operator.state import OperatorState
from pixelfleet.operator.status import reason_of
from pixelfleet.settings import Settings
from pixelfleet.sources.schemas import SourceOrigin
from pixelfleet.sources.service import staged_source

log = logging.getLogger(__name__)

LIMIT_RETRY_SECONDS = 30
"""When a limit that passes (the account's active tasks, say) holds a job back, without a
time of its own to retry."""


class HeldBack(kopf.TemporaryError):
    """A limit that passes holds the job back: its admission is tried again after `delay`."""


class Rejection(Exception):
    """Why a job is not admitted: `reason` is the `Admitted` condition's (CamelCase)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class BoundAccount:
    binding: str
    """The binding's `namespace/name`: the budget its jobs are admitted under."""
    spec: CreditBindingSpec


def idempotency_key(uid: str) -> str:
    return f"imagejob:{uid}"


async def binding_of(state: OperatorState, namespace: str) -> BoundAccount:
    """The namespace's binding (the oldest, when there are several)."""
    bindings = await state.bindings.in_namespace(namespace)
    if not bindings:
        raise Rejection(
            "NoCreditBinding",
            f"No CreditBinding in namespace {namespace}: one names the account that pays for "
            "the namespace's ImageJobs.",
        )
    found = bindings[0]
    name = str(found.get("metadata", {}).get("name"))
    try:
        spec = CreditBindingSpec.model_validate(found.get("spec") or {})
    except ValidationError as exc:
        raise Rejection("InvalidCreditBinding", f"CreditBinding {name}: {exc.errors()}") from None
    return BoundAccount(f"{namespace}/{name}", spec)


async def account_named(state: OperatorState, email: str) -> User | None:
    """The active account a binding names by `email` (None: none is, or it is erased)."""
    async with state.ctx.read_sessions() as session:
        user = await AccountRepository.from_session(session).user_by_email(normalise_email(email))
    if user is None or not user.is_active or user.erased_at is not None:
        return None
    return user


async def _account(state: OperatorState, bound: BoundAccount) -> User:
    user = await account_named(state, bound.spec.account_email)
    if user is None:
        raise Rejection(
            "AccountNotFound",
            f"CreditBinding {bound.binding} names {bound.spec.account_email}, which is not an "
            "active PixelFleet account.",
        )
    try:
        require_verified(state.ctx.settings, user)
    except PixelFleetError as problem:
        raise Rejection(reason_of(problem.slug), problem.detail) from None
    return user


async def _admitted_before(state: OperatorState, user: User, uid: str) -> Task | None:
    async with state.ctx.read_sessions() as session:
        repo = TaskRepository.from_session(session)
        record = await repo.idempotency_key(user.id, idempotency_key(uid))
        return await repo.get(record.task_id) if record is not None else None


def placement_of(
    spec: ImageJobSpec, bound: BoundAccount, resource_name: str, settings: Settings
) -> Placement:
    return Placement(
        queue=settings.stored_queue(spec.queue),
        priority=spec.priority,
        budget=Budget(bound.binding, bound.spec.budget_credits),
        resource_name=resource_name,
        active_deadline_seconds=spec.active_deadline_seconds,
        backoff_limit=spec.backoff_limit,
    )


async def admit(
    state: OperatorState, meta: dict[str, Any], spec: ImageJobSpec
) -> tuple[Task, BoundAccount]:
    """The job's task, made and charged now or found made before; a `Rejection` otherwise."""
    namespace, name, uid = str(meta["namespace"]), str(meta["name"]), str(meta["uid"])
    bound = await binding_of(state, namespace)
    user = await _account(state, bound)
    earlier = await _admitted_before(state, user, uid)
    if earlier is not None:
        return earlier, bound
    ctx, settings = state.ctx, state.ctx.settings
    source = spec.source.requested()
    try:
        async with ctx.read_sessions() as reads:
            staged = await staged_source(
                ctx.storage, settings, user, source, reads=lambda: reads, end_reads=reads.close
            )
        try:
            async with unit_of_work(ctx) as session:
                submission = await jobs_service.submit_task(
                    session,
                    ctx.storage,
                    user,
                    staged,
                    spec.pipeline,
                    settings.image_limits,
                    settings.account_quotas,
                    idempotency_key=idempotency_key(uid),
                    origin=SourceOrigin.of(source),
                    placement=placement_of(spec, bound, f"{namespace}/{name}", settings),
                    dispatch_ahead=settings.dispatch_ahead,
                )
        finally:
            staged.discard()
    except PixelFleetError as problem:
        if problem.status >= 500:
            raise
        if isinstance(problem, RetryLater) or problem.status == 429:  # a limit that passes
            delay = getattr(problem, "retry_after_seconds", LIMIT_RETRY_SECONDS)
            raise HeldBack(problem.detail, delay=delay) from None
        raise Rejection(reason_of(problem.slug), problem.detail) from None
    log.info(
        "%s/%s admitted as task %s for %s (%d credits, budget %s)",
        namespace,
        name,
        submission.task.id,
        bound.spec.account_email,
        submission.task.cost,
        bound.binding,
    )
    return submission.task, bound


async def task_admitted_for(state: OperatorState, uid: str) -> uuid.UUID | None:
    """The task admitted for the ImageJob `uid`, found by its idempotency key: a job deleted
    before its status named its task still has one."""
    async with state.ctx.read_sessions() as session:
        return await TaskRepository.from_session(session).task_of_idempotency_key(
            idempotency_key(uid)
        )


NOT_YOURS = (
    "spec.taskId belongs to the ImageJobs PixelFleet makes (task-<id>, in its own namespace): "
    "a job applied by hand names a source and a pipeline instead"
)


def may_name_its_task(spec: ImageJobSpec, where: tuple[str, str], own_namespace: str) -> bool:
    """Whether a job at `where` (namespace, name) may name its `spec.taskId`: only the job
    PixelFleet made for that task, in its own namespace, may read and cancel it (a job applied
    elsewhere must not reach another account's task). A job naming none may be anywhere."""
    if spec.task_id is None:
        return True
    return where == (own_namespace, imagejob_name(spec.task_id))


def task_id_of(spec: ImageJobSpec, status: dict[str, Any] | None) -> uuid.UUID | None:
    """The job's task: named in its spec (made by PixelFleet) or in its status (admitted)."""
    written = spec.task_id or (status or {}).get("taskId")
    try:
        return uuid.UUID(str(written)) if written else None
    except ValueError:
        return None
