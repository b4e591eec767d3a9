"""Named pipelines a user saves once and submits as `{"preset": NAME}`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.assets import service as assets
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.spec import Pipeline, parse_pipeline
from pixelfleet.models import Preset, User
from pixelfleet.pagination import InvalidCursor, decode_cursor, encode_cursor, page_of
from pixelfleet.presets.errors import PresetExists, PresetNotFound
from pixelfleet.presets.repository import PresetRepository
from pixelfleet.presets.schemas import PresetOut, PresetPage
from pixelfleet.quotas import AccountQuotas, hold_active_account


async def _validated(
    session: AsyncSession, user: User, raw: dict[str, Any], limits: ImageLimits
) -> dict[str, Any]:
    pipeline = parse_pipeline(raw, limits)
    await assets.check_owned(session, user, pipeline.asset_ids())
    return pipeline.model_dump(mode="json")


async def _insert(
    session: AsyncSession,
    user: User,
    name: str,
    pipeline: dict[str, Any],
    quotas: AccountQuotas,
) -> Preset:
    """Adds the preset; the caller holds the account (`hold_account`) for the count."""
    repo = PresetRepository.from_session(session)
    exists = PresetExists(f"A preset named {name!r} already exists; PUT replaces it.")
    if await repo.get(user.id, name) is not None:
        raise exists
    quotas.require_room("max_presets_per_user", usage=await repo.count_for_user(user.id))
    try:
        async with session.begin_nested():
            return await repo.add(Preset(user_id=user.id, name=name, pipeline=pipeline))
    except IntegrityError as exc:
        raise exists from exc


async def create_preset(
    session: AsyncSession,
    user: User,
    name: str,
    raw: dict[str, Any],
    limits: ImageLimits,
    quotas: AccountQuotas,
) -> Preset:
    """Saves a new preset, within the account's `max_presets_per_user`."""
    pipeline = await _validated(session, user, raw, limits)
    await hold_active_account(session, user.id)  # the presets are counted, then added to, alone
    return await _insert(session, user, name, pipeline, quotas)


async def replace_preset(
    session: AsyncSession,
    user: User,
    name: str,
    raw: dict[str, Any],
    limits: ImageLimits,
    quotas: AccountQuotas,
) -> tuple[Preset, bool]:
    """Saves the pipeline under `name`; True when the preset is new (and counted against
    `max_presets_per_user`; replacing one takes no more room)."""
    pipeline = await _validated(session, user, raw, limits)
    # Held first: a PUT racing another PUT of the same new name replaces what that one made.
    await hold_active_account(session, user.id)
    preset = await PresetRepository.from_session(session).get(user.id, name)
    if preset is None:
        return await _insert(session, user, name, pipeline, quotas), True
    preset.pipeline = pipeline
    await session.flush()
    return preset, False


async def get_preset(session: AsyncSession, user: User, name: str) -> Preset:
    preset = await PresetRepository.from_session(session).get(user.id, name)
    if preset is None:
        raise PresetNotFound(f"No preset named {name!r} exists for this account.")
    return preset


async def list_presets(
    session: AsyncSession, user: User, *, cursor: str | None, limit: int
) -> PresetPage:
    after = None
    if cursor:
        after = decode_cursor(cursor).get("name")
        if not isinstance(after, str):
            raise InvalidCursor
    rows = await PresetRepository.from_session(session).page_for_user(
        user.id, after=after, limit=limit + 1
    )
    page = page_of(rows, limit, lambda preset: encode_cursor({"name": preset.name}))
    return PresetPage(
        items=[PresetOut.model_validate(preset) for preset in page.items],
        next_cursor=page.next_cursor,
    )


async def delete_preset(session: AsyncSession, user: User, name: str) -> None:
    preset = await get_preset(session, user, name)
    await PresetRepository.from_session(session).delete(preset.id)


async def pipeline_of(
    session: AsyncSession, user: User, name: str, limits: ImageLimits
) -> Pipeline:
    """The saved pipeline, validated again against today's limits."""
    preset = await get_preset(session, user, name)
    return parse_pipeline(preset.pipeline, limits)
