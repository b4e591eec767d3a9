"""Engine and session makers, the declarative base and the column types shared by all tables."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import DateTime, MetaData, Select, and_, event, make_url, or_, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session, SessionTransaction
from sqlalchemy.types import TypeDecorator

from pixelfleet import sqlite_one_hop

log = logging.getLogger(__name__)

READ_ONLY_OPTION = "pixelfleet_read_only"

Row = TypeVar("Row")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and write-locking transactions.

    SQLite write transactions start with `BEGIN IMMEDIATE` so that two writers queue on the busy
    timeout instead of one failing with "database is locked" when it upgrades its lock. Read-only
    sessions (`create_read_session_factory`) start a plain `BEGIN`: in WAL mode they take no lock.
    """
    # A failed statement's parameters (password and token hashes among them) stay out of the
    # exception's text, and so out of the logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        if make_url(url).get_driver_name() == "aiosqlite":
            kwargs.setdefault("module", sqlite_one_hop.dbapi())
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_on_begin(conn: Any) -> None:
            read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def create_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads only: no write lock on SQLite, a READ ONLY transaction on PostgreSQL."""
    options: dict[str, Any] = {READ_ONLY_OPTION: True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    return async_sessionmaker(engine.execution_options(**options), expire_on_commit=False)


def newest_first(
    statement: Select[Row],
    created_at: InstrumentedAttribute[datetime],
    ident: InstrumentedAttribute[uuid.UUID],
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Select[Row]:
    """A keyset page, newest first: the rows that come after `after` (a (created_at, id)
    position from the previous page), `limit` of them."""
    if after is not None:
        stamp, last_id = after
        statement = statement.where(
            or_(created_at < stamp, and_(created_at == stamp, ident < last_id))
        )
    return statement.order_by(created_at.desc(), ident.desc()).limit(limit)


@contextmanager
def sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Switches SQLite's foreign keys off for a block run outside any transaction (the pragma
    is ignored inside one), then checks them and switches them back on."""
    if connection.dialect.name != "sqlite":
        yield
        return
    if connection.in_transaction():
        raise RuntimeError("foreign keys can only be switched outside a transaction")
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
        cursor.execute("PRAGMA foreign_key_check")
        broken = cursor.fetchall()
        if broken:
            raise RuntimeError(f"foreign keys broken by the migration: {broken[:5]}")
    finally:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


async def advisory_xact_lock(session: AsyncSession, key: int) -> None:
    """On PostgreSQL, waits for and takes the transaction-scoped advisory lock `key` (a signed
    64-bit number), which the transaction's end lets go: what serialises work that has no one
    row to lock. On SQLite every write transaction already holds the database's write lock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def ping(engine: AsyncEngine) -> None:
    """Raises if the database does not answer."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


# ---- Work that waits for the commit --------------------------------------------------------------
# Services never commit (their callers do), so what must follow a commit is held on the session
# until its outermost transaction commits, and dropped if the transaction or savepoint it was
# queued in rolls back, or the session closes without committing. Two kinds wait:
# - `when_committed`: a synchronous action (counting a metric), run by the commit itself;
# - `after_commit`: async work (dispatching a task to a worker, announcing a task's event,
#   starting a webhook's delivery), run by the boundary that committed, once its commit is
#   done: `unit_of_work` (a worker's, a sweep's, a Kopf handler's, a command's transaction) and
#   the API's request session call `run_committed_work` with the process context, which each
#   piece of work is given.
# Work that fails after the commit is logged and does not undo the commit, nor stop the work
# queued after it: the database is the record, and every such piece of work has a repair path
# (the re-dispatch job, the event stream's resync from the database, the webhook sweep).

_PENDING = "pixelfleet.db.after_commit"
"""The session.info key of the (transaction, action) pairs waiting for the commit."""
_COMMITTED = "pixelfleet.db.committed_work"
"""The session.info key of the async work whose transaction committed, waiting for its run."""
_FLUSHED = "pixelfleet.db.runs_committed_work"
"""The session.info key that marks a session whose owner runs its committed work."""

AfterCommitWork = Callable[[Any], Awaitable[None]]
"""Async work given the process context of the boundary that committed."""


class _Work:
    """Async work in the pending list (a sync action is a plain callable)."""

    __slots__ = ("run",)

    def __init__(self, run: AfterCommitWork) -> None:
        self.run = run


def _current_transaction(session: AsyncSession | Session) -> tuple[Session, SessionTransaction]:
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    transaction = sync.get_nested_transaction() or sync.get_transaction()
    if transaction is None:
        raise RuntimeError("no transaction to wait for: call this after the write it follows")
    return sync, transaction


def when_committed(session: AsyncSession | Session, action: Callable[[], None]) -> None:
    """Runs `action` after the session's outermost transaction commits; never if the current
    transaction (or savepoint) rolls back or the session closes without committing."""
    sync, transaction = _current_transaction(session)
    sync.info.setdefault(_PENDING, []).append((transaction, action))


def after_commit(session: AsyncSession, work: AfterCommitWork) -> None:
    """Queues `work` to run once the session's outermost transaction commits, given the process
    context, by the boundary that committed; dropped if the current transaction (or savepoint)
    rolls back or the session closes without committing. Only a session whose owner runs its
    committed work (`unit_of_work`, the API's request session) takes work: anywhere else it
    would be silently lost, so queuing there is refused."""
    sync, transaction = _current_transaction(session)
    if not sync.info.get(_FLUSHED):
        raise RuntimeError(
            "this session's owner does not run work after its commit: open it with "
            "db.unit_of_work (or take the request's session)"
        )
    sync.info.setdefault(_PENDING, []).append((transaction, _Work(work)))


def runs_committed_work(session: AsyncSession) -> None:
    """Marks `session` as owned by a boundary that calls `run_committed_work` after it commits."""
    session.sync_session.info[_FLUSHED] = True


async def run_committed_work(session: AsyncSession, ctx: object) -> None:
    """Runs, in the order it was queued, the async work whose transaction has committed (work
    queued in a transaction that has not, or never will, is left alone). A failure is logged
    and the rest still runs: the commit stands."""
    info = session.sync_session.info
    while info.get(_COMMITTED):
        work: AfterCommitWork = info[_COMMITTED].pop(0)
        try:
            await work(ctx)
        except Exception:
            log.exception("work after a commit failed (the commit stands)")


class _SessionOwner(Protocol):
    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...


@asynccontextmanager
async def unit_of_work(ctx: _SessionOwner) -> AsyncIterator[AsyncSession]:
    """A transaction owned by the caller (a worker's step, a sweep, a Kopf handler, a command):
    committed when the block ends, rolled back if it raises. The work queued with
    `after_commit` runs once the commit is done, before this returns."""
    async with ctx.sessions() as session:
        runs_committed_work(session)
        async with session.begin():
            yield session
        await run_committed_work(session, ctx)


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _run_committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: what it holds waits for the outer commit
    for _, action in session.info.pop(_PENDING, ()):
        if isinstance(action, _Work):  # the boundary runs it, once its commit has returned
            session.info.setdefault(_COMMITTED, []).append(action.run)
            continue
        try:
            action()
        except Exception:  # the data is committed: what follows must not turn that into an error
            log.exception("an action after a commit failed")


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [
            (transaction, action)
            for transaction, action in pending
            if not _within(transaction, previous_transaction)
        ]


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # after its commit ran them, or closed without one
        session.info.pop(_PENDING, None)
