"""All SQL about direct uploads."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.models import Upload


class UploadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> UploadRepository:
        return cls(session)

    async def add(self, upload: Upload) -> Upload:
        self.session.add(upload)
        await self.session.flush()
        return upload

    async def get(self, upload_id: uuid.UUID) -> Upload | None:
        return await self.session.get(Upload, upload_id)

    async def get_for_user(self, upload_id: uuid.UUID, user_id: uuid.UUID) -> Upload | None:
        return await self.session.scalar(
            select(Upload).where(Upload.id == upload_id, Upload.user_id == user_id)
        )

    async def mark_received(self, upload_id: uuid.UUID, now: datetime) -> bool:
        """Marks the upload received, unless it was already (False then)."""
        result = await self.session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.received_at.is_(None))
            .values(received_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def expired_unpurged(self, now: datetime, limit: int) -> list[Upload]:
        statement = (
            select(Upload)
            .where(Upload.expires_at <= now, Upload.purged_at.is_(None))
            .order_by(Upload.expires_at)
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())

    async def mark_purged(self, upload_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(Upload)
            .where(Upload.id == upload_id)
            .values(purged_at=now)
            .execution_options(synchronize_session=False)
        )
