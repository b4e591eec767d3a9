"""All SQL about presets."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.models import Preset


class PresetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> PresetRepository:
        return cls(session)

    async def get(self, user_id: uuid.UUID, name: str) -> Preset | None:
        return await self.session.scalar(
            select(Preset).where(Preset.user_id == user_id, Preset.name == name)
        )

    async def count_for_user(self, user_id: uuid.UUID) -> int:
        statement = select(func.count()).select_from(Preset).where(Preset.user_id == user_id)
        return int((await self.session.execute(statement)).scalar_one())

    async def add(self, preset: Preset) -> Preset:
        self.session.add(preset)
        await self.session.flush()
        return preset

    async def page_for_user(
        self, user_id: uuid.UUID, *, after: str | None, limit: int
    ) -> list[Preset]:
        statement = select(Preset).where(Preset.user_id == user_id)
        if after is not None:
            statement = statement.where(Preset.name > after)
        return list(
            (await self.session.scalars(statement.order_by(Preset.name).limit(limit))).all()
        )

    async def delete(self, preset_id: uuid.UUID) -> None:
        await self.session.execute(delete(Preset).where(Preset.id == preset_id))
