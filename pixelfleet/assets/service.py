"""Images a user uploads once and reuses in pipelines (watermarks)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.assets.errors import AssetNotFound
from pixelfleet.assets.repository import AssetRepository
from pixelfleet.assets.schemas import AssetOut, AssetPage
from pixelfleet.errors import FieldError, InvalidInput
from pixelfleet.imaging.extent import image_alone
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.models import Asset, User
from pixelfleet.pagination import decode_time_cursor, encode_time_cursor, page_of
from pixelfleet.quotas import AccountQuotas, hold_active_account
from pixelfleet.storage import Storage, StoredObjectMissing


async def upload_asset(
    session: AsyncSession,
    storage: Storage,
    user: User,
    data: bytes,
    limits: ImageLimits,
    quotas: AccountQuotas,
) -> Asset:
    """Stores the upload's image alone (nothing appended after its end: see
    `imaging.extent`) as an asset, within the account's quotas (its count, and the bytes of
    its assets, as stored); a refused upload leaves nothing stored."""
    # Off the event loop: a format whose end cannot be read off its container is decoded.
    data, source = await asyncio.to_thread(image_alone, data, limits)
    asset_id = uuid.uuid4()
    asset = Asset(
        id=asset_id,
        user_id=user.id,
        key=f"assets/{asset_id}",
        format=source.format,
        width=source.width,
        height=source.height,
        bytes=len(data),
    )
    # Stored before the first query, so the transaction (on SQLite, the write lock) lasts only
    # for the rows it reads and writes.
    await storage.put(asset.key, data)
    try:
        repo = AssetRepository.from_session(session)
        await hold_active_account(session, user.id)
        count, stored = await repo.usage(user.id)
        quotas.require_room("max_assets_per_user", usage=count)
        quotas.require_room("max_asset_bytes_per_user", usage=stored, requested=asset.bytes)
        return await repo.add(asset)
    except BaseException:
        await storage.delete(asset.key)
        raise


async def get_asset(session: AsyncSession, user: User, asset_id: uuid.UUID) -> Asset:
    asset = await AssetRepository.from_session(session).get_for_user(asset_id, user.id)
    if asset is None:
        raise AssetNotFound(f"No asset {asset_id} exists for this account.")
    return asset


async def list_assets(
    session: AsyncSession, user: User, *, cursor: str | None, limit: int
) -> AssetPage:
    after = decode_time_cursor(cursor) if cursor else None
    rows = await AssetRepository.from_session(session).page_for_user(
        user.id, after=after, limit=limit + 1
    )
    page = page_of(rows, limit, lambda asset: encode_time_cursor(asset.created_at, asset.id))
    return AssetPage(
        items=[AssetOut.model_validate(asset) for asset in page.items],
        next_cursor=page.next_cursor,
    )


async def delete_asset(
    session: AsyncSession, storage: Storage, user: User, asset_id: uuid.UUID
) -> None:
    """Deletes an asset; tasks that still name it fail (and are refunded) when they run."""
    asset = await get_asset(session, user, asset_id)
    await AssetRepository.from_session(session).delete(asset.id)
    await storage.delete(asset.key)


async def check_owned(session: AsyncSession, user: User, asset_ids: set[uuid.UUID]) -> None:
    """Refuses a pipeline that names assets the caller does not have."""
    found = {a.id for a in await AssetRepository.from_session(session).owned(user.id, asset_ids)}
    missing = sorted(str(asset_id) for asset_id in asset_ids - found)
    if missing:
        raise InvalidInput(
            f"The pipeline names assets that do not exist: {', '.join(missing)}.",
            errors=[FieldError("pipeline", f"no asset {asset_id}") for asset_id in missing],
        )


async def load_asset_bytes(
    session: AsyncSession, storage: Storage, asset_ids: set[uuid.UUID]
) -> Mapping[uuid.UUID, bytes]:
    """The bytes of the assets a task uses; those deleted since are simply absent."""
    loaded: dict[uuid.UUID, bytes] = {}
    for asset in await AssetRepository.from_session(session).by_ids(asset_ids):
        try:
            loaded[asset.id] = await storage.get(asset.key)
        except StoredObjectMissing:
            continue
    return loaded
