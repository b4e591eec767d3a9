"""All SQL about assets."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.db import newest_first
from pixelfleet.models import Asset


class AssetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> AssetRepository:
        return cls(session)

    async def add(self, asset: Asset) -> Asset:
        self.session.add(asset)
        await self.session.flush()
        return asset

    async def usage(self, user_id: uuid.UUID) -> tuple[int, int]:
        """How many assets the user holds, and their bytes."""
        count, stored = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(Asset.bytes), 0)).where(
                    Asset.user_id == user_id
                )
            )
        ).one()
        return int(count), int(stored)

    async def get_for_user(self, asset_id: uuid.UUID, user_id: uuid.UUID) -> Asset | None:
        return await self.session.scalar(
            select(Asset).where(Asset.id == asset_id, Asset.user_id == user_id)
        )

    async def owned(self, user_id: uuid.UUID, asset_ids: Collection[uuid.UUID]) -> list[Asset]:
        if not asset_ids:
            return []
        statement = select(Asset).where(Asset.user_id == user_id, Asset.id.in_(asset_ids))
        return list((await self.session.scalars(statement)).all())

    async def by_ids(self, asset_ids: Collection[uuid.UUID]) -> list[Asset]:
        if not asset_ids:
            return []
        return list(
            (await self.session.scalars(select(Asset).where(Asset.id.in_(asset_ids)))).all()
        )

    async def page_for_user(
        self, user_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Asset]:
        statement = newest_first(
            select(Asset).where(Asset.user_id == user_id), Asset.created_at, Asset.id, after, limit
        )
        return list((await self.session.scalars(statement)).all())

    async def delete(self, asset_id: uuid.UUID) -> None:
        await self.session.execute(delete(Asset).where(Asset.id == asset_id))
