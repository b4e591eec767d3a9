"""Process-level resources (engine, sessions, storage), built once per process from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pixelfleet.accounts.tokens import TokenSigner
from pixelfleet.db import create_engine, create_read_session_factory, create_session_factory
from pixelfleet.settings import Settings
from pixelfleet.storage import Storage
from pixelfleet.storage.factory import create_storage


@dataclass
class ProcessContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    storage: Storage
    signer: TokenSigner = field(repr=False)

    @property
    def retention(self) -> timedelta:
        return timedelta(hours=self.settings.result_ttl_hours)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(days=self.settings.refresh_token_days)

    async def close(self) -> None:
        await self.engine.dispose()


def create_context(settings: Settings) -> ProcessContext:
    engine = create_engine(settings.resolved_database_url)
    return ProcessContext(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine),
        read_sessions=create_read_session_factory(engine),
        storage=create_storage(settings),
        signer=TokenSigner(
            key=settings.jwt_signing_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=timedelta(minutes=settings.access_token_minutes),
        ),
    )
