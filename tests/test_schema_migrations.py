"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pixelfleet.context import ProcessContext
from pixelfleet.schema_migrations import is_at_head, model_drift


async def test_a_migrated_database_matches_the_models(ctx: ProcessContext) -> None:
    assert await is_at_head(ctx.engine)
    assert await model_drift(ctx.engine) == []
