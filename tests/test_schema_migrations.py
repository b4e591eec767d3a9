"""The Alembic migrations build exactly the schema the models describe, on both databases,
and carry existing rows across each revision."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text

from pixelfleet.context import ProcessContext
from pixelfleet.schema_migrations import (
    head_revision,
    is_at_head,
    migrate,
    model_drift,
    schema_state,
)

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends


async def test_a_migrated_database_matches_the_models(ctx: ProcessContext) -> None:
    assert await is_at_head(ctx.engine)
    assert await model_drift(ctx.engine) == []


async def test_results_move_into_task_outputs_and_back(ctx: ProcessContext) -> None:
    engine = ctx.engine
    await migrate(engine, "downgrade", "0001")
    user_id, task_id = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO users (id, email, password_hash, role, is_active, balance, created_at)"
                " VALUES (:id, 'old@example.com', 'x', 'user', true, 0, CURRENT_TIMESTAMP)"
            ),
            {"id": user_id.hex if engine.dialect.name == "sqlite" else user_id},
        )
        await connection.execute(
            text(
                "INSERT INTO tasks (id, user_id, status, progress, cost, pipeline, source_key,"
                " source_format, source_width, source_height, source_bytes, result_key,"
                " result_format, result_content_type, result_width, result_height, result_bytes,"
                " attempts, created_at, updated_at, finished_at) VALUES (:id, :user, 'succeeded',"
                " 100, 3, '{}', 'sources/x', 'jpeg', 10, 10, 100, 'results/x.webp', 'webp',"
                " 'image/webp', 8, 6, 42, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP)"
            ),
            {
                "id": task_id.hex if engine.dialect.name == "sqlite" else task_id,
                "user": user_id.hex if engine.dialect.name == "sqlite" else user_id,
            },
        )
    await migrate(engine, "upgrade", "head")
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT name, key, format, width, height, bytes FROM task_outputs")
            )
        ).one()
    assert tuple(row) == ("default", "results/x.webp", "webp", 8, 6, 42)

    await migrate(engine, "downgrade", "0001")
    async with engine.connect() as connection:
        restored = (
            await connection.execute(text("SELECT result_key, result_bytes FROM tasks"))
        ).one()
    assert tuple(restored) == ("results/x.webp", 42)
    await migrate(engine, "upgrade", "head")


async def _stamp(ctx: ProcessContext, revision: str) -> None:
    async with ctx.engine.begin() as connection:
        await connection.execute(
            text("UPDATE alembic_version SET version_num = :r"), {"r": revision}
        )


async def test_the_schema_is_current_behind_or_ahead_of_the_code(ctx: ProcessContext) -> None:
    assert await schema_state(ctx.engine) == "current"
    await migrate(ctx.engine, "downgrade", "-1")
    assert await schema_state(ctx.engine) == "behind"
    await migrate(ctx.engine, "upgrade", "head")
    # A revision this code has never seen: a newer release migrated the database.
    await _stamp(ctx, "ffff0000newer")
    assert await schema_state(ctx.engine) == "ahead"
    assert not await is_at_head(ctx.engine)
    await _stamp(ctx, str(head_revision()))


async def test_the_api_stays_ready_while_a_newer_release_migrates_and_not_before_its_own(
    ctx: ProcessContext, client: httpx.AsyncClient
) -> None:
    await _stamp(ctx, "ffff0000newer")
    assert (await client.get("/readyz")).status_code == 200  # old pods keep serving
    await _stamp(ctx, str(head_revision()))
    await migrate(ctx.engine, "downgrade", "-1")
    behind = await client.get("/readyz")
    assert behind.status_code == 503
    assert "not migrated" in behind.json()["detail"]
    await migrate(ctx.engine, "upgrade", "head")
