"""Applies and checks the Alembic migrations in `migrations/` against an engine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import pixelfleet.models  # noqa: F401  (registers every table)
from pixelfleet.db import Base, sqlite_foreign_keys_off

log = logging.getLogger(__name__)

_PACKAGED = Path(__file__).resolve().parent / "_migrations"  # in an installed wheel
_SOURCE_TREE = Path(__file__).resolve().parent.parent / "migrations"  # in a checkout
MIGRATIONS_DIR = _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def run_migrations(connection: Connection, action: str, revision: str) -> None:
    """Runs `alembic upgrade|downgrade REVISION` on a connection with no transaction open.

    On SQLite, foreign keys are off while it runs: a batch migration rebuilds a table by
    dropping it, and with foreign keys on that drop would cascade into the rows that point at
    it. They are checked, and switched back on, afterwards."""
    config = alembic_config()
    config.attributes["connection"] = connection
    with sqlite_foreign_keys_off(connection), connection.begin():
        getattr(command, action)(config, revision)


async def upgrade_to_head(engine: AsyncEngine) -> bool:
    """Applies every migration up to this code's head. A schema a newer release migrated is
    left as it is (this code works on it: a rollback, or an older replica): False then."""
    revision = await current_revision(engine)
    if _state_of(revision) == "ahead":
        log.warning(
            "the database schema is newer than this code's migrations (revision %s): "
            "nothing to migrate",
            revision,
        )
        return False
    await migrate(engine, "upgrade", "head")
    return True


async def migrate(engine: AsyncEngine, action: str, revision: str) -> None:
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations, action, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(_current)


SchemaState = Literal["current", "behind", "ahead"]


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Where the database's schema stands against this code's migrations: at their head
    (`current`), at an older one or none (`behind`), or at a revision this code does not know
    (`ahead`: a newer release has migrated it, as during a rolling upgrade or after a rollback;
    migrations within a release only add, so this code still works on it)."""
    return _state_of(await current_revision(engine))


def _state_of(revision: str | None) -> SchemaState:
    script = ScriptDirectory.from_config(alembic_config())
    if revision == script.get_current_head():
        return "current"
    known = {r.revision for r in script.walk_revisions()}
    return "behind" if revision is None or revision in known else "ahead"


async def is_at_head(engine: AsyncEngine) -> bool:
    return await schema_state(engine) == "current"


async def model_drift(engine: AsyncEngine) -> list[object]:
    """Differences between the ORM models and a database migrated to head (empty when in sync)."""

    def _compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(_compare)
