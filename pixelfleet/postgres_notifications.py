"""PostgreSQL's notifications between the processes that share one database: `pg_notify` to
send, and one LISTEN connection of a process's own to hear. The embedded workers' doorbell and
the task events of the embedded mode on PostgreSQL both travel this way.

A notification announces what is committed already, so sending one is bounded in time and never
fails its sender. A listener that loses its connection connects again, with growing delays;
what was sent meanwhile is lost, which each user of it repairs in its own way (`reconnected`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

NOTIFY_TIMEOUT_SECONDS = 5.0

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
"""How long a lost LISTEN connection waits before each new try (the last repeats)."""

LISTEN_CHECK_SECONDS = 30.0
"""How often a quiet LISTEN connection is asked whether it still works (a server that vanished
without closing it leaves no other trace)."""

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def asyncpg_dsn(database_url: str) -> str:
    """The plain PostgreSQL URL asyncpg connects to, from SQLAlchemy's `postgresql+asyncpg`."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def notify(engine: AsyncEngine, channel: str, payload: str) -> None:
    """Sends `payload` on `channel`, outside any transaction, on a connection of `engine`'s
    pool. A failure is logged: the listeners repair a lost notification themselves."""
    try:
        async with (
            asyncio.timeout(NOTIFY_TIMEOUT_SECONDS),
            engine.connect() as connection,
        ):
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(_NOTIFY, {"channel": channel, "payload": payload})
    except (SQLAlchemyError, OSError):
        log.warning("could not notify the listeners of %s", channel, exc_info=True)


class NotificationListener:
    """One connection (asyncpg's own, outside the pool) that LISTENs on `channel` and hands
    every payload to `received`, on the event loop's thread, from `start` until `close`. When the
    connection is lost it connects again, and calls `reconnected` once it listens again."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        received: Callable[[str], None],
        reconnected: Callable[[], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.received = received
        self.reconnected = reconnected
        self.listening = asyncio.Event()
        """Set while notifications reach this listener."""
        self.tried = asyncio.Event()
        """Set once the first try to listen has ended, whether it listens or not."""
        self.connection: asyncpg.Connection | None = None
        self._keeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._keeper = asyncio.create_task(self._keep_listening(), name=f"{self.channel}-listener")

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self.received(payload)

    async def _keep_listening(self) -> None:
        failures = 0
        while True:
            connection = None
            lost = asyncio.Event()

            def ended(_connection: object, lost: asyncio.Event = lost) -> None:
                lost.set()

            try:
                connection = await asyncpg.connect(self.dsn)
                connection.add_termination_listener(ended)
                await connection.add_listener(self.channel, self._notified)
            except Exception as exc:  # whatever it is, the listener must go on trying
                if connection is not None:
                    connection.terminate()
                self.tried.set()
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning(
                    "cannot listen on %s (%s); trying again in %gs", self.channel, exc, delay
                )
                await asyncio.sleep(delay)
                continue
            self.connection = connection
            self.listening.set()
            self.tried.set()
            if failures:
                log.info("listening on %s again", self.channel)
                if self.reconnected is not None:
                    self.reconnected()
            failures = 0
            await self._until_lost(connection, lost)
            self.listening.clear()
            self.connection = None
            failures = 1
            log.warning("lost the connection that listens on %s; connecting again", self.channel)

    async def _until_lost(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), LISTEN_CHECK_SECONDS)
                return
            try:
                await asyncio.wait_for(connection.execute("SELECT 1"), LISTEN_CHECK_SECONDS)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                connection.terminate()
                return

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        self.listening.clear()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.close(), 5)
            self.connection = None
