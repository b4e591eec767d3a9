"""Task events as PostgreSQL notifications (the embedded mode on PostgreSQL, where several
machines' `pixelfleet up` may share one database and so no local socket reaches them all).

A publisher sends `pg_notify('pixelfleet_events', <the event as JSON>)` on its engine (a few
hundred bytes, far below PostgreSQL's 8000-byte payload limit); each API process holds one
connection of its own, outside the pool, that LISTENs and hands every notification on. A
dropped listening connection is made again; what was missed meanwhile the watchers' slow
re-read of the record repairs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from pixelfleet.events import EventReceiver, TaskEvent

log = logging.getLogger(__name__)

CHANNEL = "pixelfleet_events"
RECONNECT_SECONDS = 1.0
# How long an API process's start waits for its listening connection before it serves anyway.
CONNECT_WAIT_SECONDS = 10.0
PUBLISH_TIMEOUT_SECONDS = 5.0
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def listener_dsn(database_url: str) -> str:
    """The plain PostgreSQL URL asyncpg connects to, from SQLAlchemy's `postgresql+asyncpg`."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresNotifyEvents:
    def __init__(self, engine: AsyncEngine, dsn: str) -> None:
        self.engine = engine
        self.dsn = dsn

    async def publish(self, event: TaskEvent) -> None:
        try:
            # Bounded: the work it follows is committed already, and must not wait on an event.
            async with (
                asyncio.timeout(PUBLISH_TIMEOUT_SECONDS),
                self.engine.connect() as connection,
            ):
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(_NOTIFY, {"channel": CHANNEL, "payload": event.to_json()})
        except (SQLAlchemyError, OSError):
            log.warning("could not publish an event for task %s", event.task_id, exc_info=True)

    @asynccontextmanager
    async def listening(self, deliver: EventReceiver) -> AsyncIterator[None]:
        ready = asyncio.Event()
        listener = asyncio.create_task(self._listen(deliver, ready), name="event-listener")
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), CONNECT_WAIT_SECONDS)
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self, deliver: EventReceiver, ready: asyncio.Event) -> None:
        def received(_connection: object, _pid: int, _channel: str, payload: str) -> None:
            try:
                event = TaskEvent.from_json(payload)
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("ignored a malformed event notification")
                return
            deliver(event)

        while True:
            try:
                connection = await asyncpg.connect(self.dsn)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                log.warning("could not open the event listener's connection", exc_info=True)
                ready.set()  # serve without it meanwhile: watchers re-read the record
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            lost = asyncio.Event()

            def ended(_connection: object, lost: asyncio.Event = lost) -> None:
                lost.set()

            try:
                connection.add_termination_listener(ended)
                await connection.add_listener(CHANNEL, received)
                ready.set()
                await lost.wait()
                log.warning("the event listener's connection was lost; connecting again")
            except (OSError, asyncpg.PostgresError):
                log.warning("the event listener's connection failed", exc_info=True)
            finally:
                connection.terminate()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def close(self) -> None:
        return None  # the engine is the context's
