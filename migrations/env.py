"""Alembic environment: runs on a connection handed in by PixelFleet, else on the settings' URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import pixelfleet.models  # noqa: F401  (registers every table)
from pixelfleet.db import Base, create_engine, sqlite_foreign_keys_off

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_outside_transaction(connection: Connection) -> None:
    with sqlite_foreign_keys_off(connection), connection.begin():
        _run(connection)


async def _run_from_settings() -> None:
    from pixelfleet.settings import Settings

    engine = create_engine(Settings().resolved_database_url)
    async with engine.connect() as connection:
        await connection.run_sync(_run_outside_transaction)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `pixelfleet migrate`")

given = config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    asyncio.run(_run_from_settings())
