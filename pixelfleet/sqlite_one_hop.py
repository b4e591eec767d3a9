"""SQLite through aiosqlite in one thread hop per statement.

aiosqlite runs each sqlite3 call in the connection's own thread, and the event loop waits for
each: SQLAlchemy's adapter makes four such hops per statement (open a cursor, execute, fetch
the rows, close the cursor), each a queue hand-off, a wake-up of the loop through its self-pipe
and a switch of the GIL, which cost more than the statement itself on a small table. Here the
whole statement (execute, fetch every row, read the cursor's description, row count and last
row id, close) is one function run in that thread: one hop. Nothing else changes: the same
connection, thread, transactions and errors.

No library does this: SQLAlchemy's adapter is written for drivers whose cursors are async
objects, and aiosqlite offers only per-call methods. It uses aiosqlite's `_execute` (queue a
function for the connection's thread) and `_conn` (the sqlite3 connection), as SQLAlchemy's
own adapter does for isolation levels.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

_Outcome = tuple[Any, int, int | None, list[Any]]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """In the connection's thread: the statement, start to end."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that holds no sqlite3 cursor between calls: each statement runs whole, in one
    hop, and its rows wait here to be fetched."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no cursor opened: no hop
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # (the base class's: never opened)
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1  # as sqlite3's cursors

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]  # None before an insert, as sqlite3

    async def _async_soft_close(self) -> None:
        """Nothing is held open to close (the rows are already here)."""

    def close(self) -> None:
        self._rows.clear()

    async def _hop(self, operation: str, parameters: Any, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            connection: Any = self._connection  # an aiosqlite.Connection
            outcome: _Outcome = await connection._execute(
                _run, connection._conn, operation, parameters, many
            )
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._hop(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._hop(operation, seq_of_parameters, many=True)

    def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite module, whose connections make one hop per statement."""

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def dbapi() -> OneHopDBAPI:
    """The module to give `create_async_engine(..., module=...)` for a `sqlite+aiosqlite` URL."""
    aiosqlite_module: ModuleType = aiosqlite
    return OneHopDBAPI(aiosqlite_module, sqlite3)
