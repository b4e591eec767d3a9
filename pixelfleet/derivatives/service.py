"""Images on demand: signing derivative URLs, rotating the key that signs them, and serving one.

A derivative is made by an ordinary task (charged, queued, run by the workers, refunded if it
fails, kept for the retention time like any other), whose source is the stored image the URL
names and whose pipeline is the preset's, in the format picked for the reader. The
`derivatives` row that points at that task is unique per (account, source, preset as signed,
picked format): of many first reads at once, one inserts it in the transaction that charges the
task, and the others roll back, uncharged, and wait for that task."""

from __future__ import annotations

import contextlib
import copy
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.context import ProcessContext
from pixelfleet.db import unit_of_work, utcnow
from pixelfleet.derivatives.errors import (
    DerivationFailed,
    ImageNotReady,
    ImageUrlInvalid,
    ImageUrlStale,
)
from pixelfleet.derivatives.schemas import ImageUrlIn
from pixelfleet.derivatives.urls import DeliveryKeys, ImageUrlClaims, pipeline_digest
from pixelfleet.errors import FieldError, InvalidInput
from pixelfleet.imaging.codecs import sniff
from pixelfleet.imaging.formats import AUTO, NEGOTIATED_FORMATS, fallback_format
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.spec import Pipeline, parse_pipeline
from pixelfleet.jobs import results
from pixelfleet.jobs import service as jobs
from pixelfleet.jobs.errors import ResultExpired
from pixelfleet.jobs.results import AcceptedTypes, StoredResult
from pixelfleet.jobs.schemas import TaskOut
from pixelfleet.jobs.states import CANCELLED, FAILED, SUCCEEDED
from pixelfleet.models import Derivative, Preset, Task, User
from pixelfleet.observability.metrics import DERIVATIONS
from pixelfleet.presets.repository import PresetRepository
from pixelfleet.sources.schemas import SourceOrigin
from pixelfleet.sources.service import staged_source
from pixelfleet.sources.stored import stored_image
from pixelfleet.webhooks.signing import new_salt

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2
"""What a 503 for an image still being made asks the reader to wait."""
_ATTEMPTS = 3
"""Derivations a read starts at most (a cancelled or expired one is made anew)."""

WaitForTask = Callable[[uuid.UUID, float], Awaitable[TaskOut]]
"""The task once final, or as it stands after the given seconds."""


# ---- signing -----------------------------------------------------------------------------------


async def _one_output_preset(
    session: AsyncSession, user: User, name: str, limits: ImageLimits
) -> tuple[Preset, Pipeline]:
    preset = await PresetRepository.from_session(session).get(user.id, name)
    if preset is None:
        raise InvalidInput(
            f"No preset named {name!r} exists for this account.",
            errors=[FieldError("preset", "no preset with this name")],
        )
    pipeline = parse_pipeline(preset.pipeline, limits)
    if pipeline.variants:
        raise InvalidInput(
            f"The preset {name!r} makes several outputs; an image URL shows one.",
            errors=[FieldError("preset", "a preset with variants makes several images")],
        )
    return preset, pipeline


async def create_image_url(
    session: AsyncSession, keys: DeliveryKeys, user: User, body: ImageUrlIn, limits: ImageLimits
) -> str:
    """A derivative URL of `body.source` through the preset `body.preset`, signed with the
    account's delivery key. Nothing is made or charged until it is first read. 404 for a source
    that is not the account's, 410 for one whose files are gone, 422 for a preset it has not
    (or one of several outputs)."""
    await stored_image(session, user, body.source)
    preset, _ = await _one_output_preset(session, user, body.preset, limits)
    claims = ImageUrlClaims(user.id, body.source, preset.name, pipeline_digest(preset.pipeline))
    return keys.url(claims, user.delivery_key_salt)


async def rotate_delivery_key(session: AsyncSession, user: User) -> datetime:
    """A new delivery key for the account: every derivative URL signed before stops working
    (the images already made stay stored, and a new URL for one is not charged again)."""
    await session.execute(
        update(User).where(User.id == user.id).values(delivery_key_salt=new_salt())
    )
    return utcnow()


async def verified(ctx: ProcessContext, token: str) -> tuple[User, ImageUrlClaims]:
    """The account whose current delivery key signed `token`, and what it names; else
    ImageUrlInvalid (a changed token, an old key, an account disabled or gone)."""
    user_id = DeliveryKeys.signer(token)
    async with ctx.read_sessions() as session:
        user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise ImageUrlInvalid("This image URL is not one this account's delivery key signs.")
    return user, ctx.delivery_keys.verify(token, user.id, user.delivery_key_salt)


# ---- serving -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    result: StoredResult
    cached: bool
    """Found made (a cache hit), rather than made, or waited for, by this read."""


@dataclass(frozen=True)
class _Key:
    """A derivative's unique key: the `derivatives` columns of that name."""

    user_id: uuid.UUID
    source_kind: str
    source_id: uuid.UUID
    preset: str
    preset_digest: str
    choice: str

    def matches(self) -> list[Any]:
        return [getattr(Derivative, name) == value for name, value in asdict(self).items()]


def _choice(requested: str | None, accepted: AcceptedTypes) -> str:
    """The format to make for this reader: the preset's (`source`: the source's own); for
    `auto`, the negotiated format the reader names first, else `fallback`."""
    if requested is None:
        return "source"
    if requested != AUTO:
        return requested
    return results.preferred_format(accepted) or "fallback"


async def deliver(
    ctx: ProcessContext,
    wait_for_task: WaitForTask,
    user: User,
    claims: ImageUrlClaims,
    accepted: AcceptedTypes,
    *,
    now: Callable[[], float],
) -> Delivered:
    """The stored image a verified derivative URL names, in the format picked for a reader
    who accepts `accepted`, made first if it has not been (charging the account the preset's
    price for that format, once). `now` is a monotonic clock, for the time budget
    (`derive_timeout_seconds`); past it, ImageNotReady while the image is finished."""
    deadline = now() + ctx.settings.derive_timeout_seconds
    async with ctx.read_sessions() as session:
        preset = await PresetRepository.from_session(session).get(user.id, claims.preset)
        if preset is None or pipeline_digest(preset.pipeline) != claims.digest:
            raise ImageUrlStale(
                f"The preset {claims.preset!r} changed since this URL was signed; sign a new one."
            )
        stored_pipeline = dict(preset.pipeline)
        pipeline = parse_pipeline(stored_pipeline, ctx.settings.image_limits)
        negotiated = pipeline.output.format == AUTO
        key = _key_of(user, claims, _choice(pipeline.output.format, accepted))
        found = await _found(session, key)
        if found is not None and found[1]:
            # Made already (the common case): its file, found in this same read.
            with contextlib.suppress(ResultExpired):  # (past retention: made anew below)
                result = await results.find_result(session, user, found[0])
                return Delivered(replace(result, negotiated=negotiated), cached=True)
    for _ in range(_ATTEMPTS):
        async with ctx.read_sessions() as session:
            found = await _found(session, key)
        started = found is None
        if found is None:
            derived = await _derive(ctx, user, claims, stored_pipeline, key)
            if derived is None:
                continue  # another read made the row first: wait for its task
            task_id, made = derived, False
        else:
            task_id, made = found
        # Made already (the common case): straight to its file; else as it ends, or stands.
        task = None if made else await wait_for_task(task_id, max(0.0, deadline - now()))
        if task is None or task.status == SUCCEEDED:
            try:
                async with ctx.read_sessions() as session:
                    result = await results.find_result(session, user, task_id)
            except ResultExpired:
                await _forget(ctx, key, task_id)  # past retention: made anew
                continue
            if started:
                DERIVATIONS.labels("succeeded").inc()
            return Delivered(replace(result, negotiated=negotiated), cached=made)
        if task.status == FAILED:
            if started:
                DERIVATIONS.labels("failed").inc()
            message = task.error.message if task.error else "the image could not be made"
            raise DerivationFailed(message)
        if task.status == CANCELLED:
            await _forget(ctx, key, task_id)
            continue
        if started:
            DERIVATIONS.labels("pending").inc()
        raise ImageNotReady(
            f"The image is still being made; ask again in {RETRY_AFTER_SECONDS} seconds.",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )
    raise ImageNotReady(
        "The image is being made again; ask again shortly.",
        retry_after_seconds=RETRY_AFTER_SECONDS,
    )


def _key_of(user: User, claims: ImageUrlClaims, choice: str) -> _Key:
    origin = SourceOrigin.of(claims.source)  # its kind, and the id it names
    return _Key(
        user_id=user.id,
        source_kind=origin.kind,
        source_id=uuid.UUID(origin.ref),
        preset=claims.preset,
        preset_digest=claims.digest,
        choice=choice,
    )


async def _found(session: AsyncSession, key: _Key) -> tuple[uuid.UUID, bool] | None:
    """The task that makes (or made) this derivative, if one was started, and whether it had
    made it already."""
    row = (
        await session.execute(
            select(Derivative.task_id, Task.status)
            .join(Task, Task.id == Derivative.task_id)
            .where(*key.matches())
        )
    ).first()
    return None if row is None else (row.task_id, row.status == SUCCEEDED)


async def _forget(ctx: ProcessContext, key: _Key, task_id: uuid.UUID) -> None:
    """Drops the row of a derivative that will not be served (cancelled, or past retention),
    if it still names that task, so that the next read makes it anew."""
    async with unit_of_work(ctx) as session:
        await session.execute(
            delete(Derivative).where(*key.matches(), Derivative.task_id == task_id)
        )


def _pipeline_for(stored: Mapping[str, Any], choice: str, has_alpha: bool) -> dict[str, Any]:
    """The preset's pipeline, written in the picked format."""
    pipeline = copy.deepcopy(dict(stored))
    if choice in NEGOTIATED_FORMATS or choice == "fallback":
        name = choice if choice != "fallback" else fallback_format(has_alpha)
        pipeline["output"] = {**pipeline.get("output", {}), "format": name}
    return pipeline


async def _derive(
    ctx: ProcessContext,
    user: User,
    claims: ImageUrlClaims,
    stored_pipeline: Mapping[str, Any],
    key: _Key,
) -> uuid.UUID | None:
    """Submits the task that makes the derivative, and records it, in one transaction: the
    new task's id, or None when another read recorded one first (this one is rolled back,
    uncharged). A source gone is a 404 or 410; no credits, a 402."""
    settings = ctx.settings
    async with ctx.read_sessions() as reads:
        staged = await staged_source(
            ctx.storage, settings, user, claims.source, reads=lambda: reads, end_reads=reads.close
        )
    try:
        # Only the fallback of `auto` depends on the source (its alpha, read from the header).
        limits = settings.image_limits
        has_alpha = key.choice == "fallback" and sniff(staged.read(), limits).has_alpha
        pipeline = _pipeline_for(stored_pipeline, key.choice, has_alpha)
        task_id: uuid.UUID | None = None
        try:
            async with unit_of_work(ctx) as session:
                submission = await jobs.submit_task(
                    session,
                    ctx.storage,
                    user,
                    staged,
                    pipeline,
                    settings.image_limits,
                    settings.account_quotas,
                    origin=SourceOrigin.of(claims.source),
                    dispatch_ahead=settings.dispatch_ahead,
                )
                task_id = submission.task.id
                session.add(Derivative(**asdict(key), task_id=task_id))
                await session.flush()
        except IntegrityError:
            if task_id is None:
                raise
            # Rolled back, charge and all; only the source it stored is left to delete.
            await ctx.storage.delete(jobs.source_key_of(task_id))
            return None
        return task_id
    finally:
        staged.discard()
