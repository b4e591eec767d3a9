"""`pixelfleet migrate`, and the schema checks other commands make before they start."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import click

from pixelfleet.cli.configuration import load_settings
from pixelfleet.settings import Settings

if TYPE_CHECKING:
    from pixelfleet.schema_migrations import SchemaState


async def migrate_to_head(settings: Settings) -> bool:
    """Migrates to this code's head; False when a newer release's schema is left as it is."""
    from alembic.util import CommandError

    from pixelfleet.db import create_engine
    from pixelfleet.schema_migrations import upgrade_to_head

    engine = create_engine(settings.resolved_database_url)
    try:
        return await upgrade_to_head(engine)
    except CommandError as exc:
        raise click.ClickException(f"the migrations failed: {exc}") from exc
    finally:
        await engine.dispose()


async def _migration_status(settings: Settings) -> tuple[SchemaState, list[object]]:
    """The schema's state, and (when current) how the models differ from it."""
    from pixelfleet.db import create_engine
    from pixelfleet.schema_migrations import model_drift, schema_state

    engine = create_engine(settings.resolved_database_url)
    try:
        state = await schema_state(engine)
        return state, (await model_drift(engine)) if state == "current" else []
    finally:
        await engine.dispose()


async def _status_when_reachable(
    settings: Settings, seconds: float, *, until: frozenset[SchemaState]
) -> tuple[SchemaState, list[object]]:
    """The migration status once the database answers with a state in `until` (any state when
    empty), or as it stands when `seconds` have passed: an unreachable database then raises."""
    from sqlalchemy.exc import SQLAlchemyError

    deadline = time.monotonic() + seconds
    while True:
        try:
            status = await _migration_status(settings)
        except (OSError, SQLAlchemyError):
            if time.monotonic() >= deadline:
                raise
            status = None
        if status is not None and (not until or status[0] in until or time.monotonic() >= deadline):
            return status
        await asyncio.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


def require_usable_schema(settings: Settings) -> None:
    """Refuses to start a part on a database older than its code."""
    state, _drift = asyncio.run(_migration_status(settings))
    if state == "behind":
        raise click.ClickException(
            "the database is not migrated to the latest revision: run `pixelfleet migrate` first"
        )


@click.command()
@click.option("--check", is_flag=True, help="Only check that the database is at the latest schema.")
@click.option(
    "--allow-newer",
    is_flag=True,
    help="With --check: also pass on a schema newer than this code's (a rolling upgrade).",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Wait this long for the database to come up (with --check: and to be migrated).",
)
def migrate(check: bool, allow_newer: bool, wait_seconds: float) -> None:
    """Apply the database migrations (or check them)."""
    from sqlalchemy.exc import SQLAlchemyError

    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    settings = load_settings()
    if allow_newer and not check:
        raise click.UsageError("--allow-newer goes with --check")
    passing: frozenset[SchemaState] = frozenset(
        ({"current", "ahead"} if allow_newer else {"current"}) if check else set()
    )
    try:
        state, drift = asyncio.run(_status_when_reachable(settings, wait_seconds, until=passing))
        if check:
            if state not in passing:
                raise click.ClickException(
                    "the database is newer than this code's migrations"
                    if state == "ahead"
                    else "the database is not migrated to the latest revision"
                )
            if drift:
                raise click.ClickException(f"the models differ from the migrations: {drift}")
            click.echo(
                "database schema is up to date"
                if state == "current"
                else "database schema is newer than this code's, which works on it"
            )
            return
        migrated = asyncio.run(migrate_to_head(settings))
    except (OSError, SQLAlchemyError) as exc:
        raise click.ClickException(f"the database is unreachable: {exc}") from exc
    click.echo(
        "database migrated to the latest revision"
        if migrated
        else "database schema is newer than this code's, which works on it: nothing to migrate"
    )
