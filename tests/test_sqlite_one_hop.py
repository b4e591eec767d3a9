"""SQLite statements reach aiosqlite's thread once each (`pixelfleet.sqlite_one_hop`), and
answer as sqlite3 does: rows, row counts, last row ids, many rows at once, and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from pixelfleet.db import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one-hop.db'}")
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT UNIQUE NOT NULL)")
        )
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_statements_answer_as_sqlite_does(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        inserted = await connection.execute(text("INSERT INTO notes (body) VALUES ('a')"))
        assert inserted.lastrowid == 1
        many = await connection.execute(
            text("INSERT INTO notes (body) VALUES (:body)"), [{"body": "b"}, {"body": "c"}]
        )
        assert many.rowcount == 2
        updated = await connection.execute(text("UPDATE notes SET body = body || '!'"))
        assert updated.rowcount == 3
        returned = await connection.execute(
            text("UPDATE notes SET body = 'z' WHERE id = 3 RETURNING id, body")
        )
        assert returned.all() == [(3, "z")]
        rows = await connection.execute(text("SELECT id, body FROM notes ORDER BY id"))
        assert list(rows.keys()) == ["id", "body"]
        assert rows.all() == [(1, "a!"), (2, "b!"), (3, "z")]
        some = await connection.execute(text("SELECT id FROM notes ORDER BY id"))
        assert some.fetchmany() == [(1,)]  # as many as the cursor's arraysize: one
        assert some.fetchmany(5) == [(2,), (3,)]
        with pytest.raises(IntegrityError):
            await connection.execute(text("INSERT INTO notes (body) VALUES ('z')"))


async def test_a_statement_is_one_hop_to_the_connections_thread(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops = 0
    queue_for_thread = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal hops
        hops += 1
        return await queue_for_thread(self, fn, *args, **kwargs)

    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))  # the connection and its transaction begin
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        for _ in range(5):
            result = await connection.execute(text("SELECT id, body FROM notes"))
            result.all()
        assert hops == 5
