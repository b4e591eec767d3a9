"""Task events as PostgreSQL notifications (the embedded mode on PostgreSQL, where several
machines' `pixelfleet up` may share one database and so no local socket reaches them all).

A publisher sends `pg_notify('pixelfleet_events', <the event as JSON>)` on its engine (a few
hundred bytes, far below PostgreSQL's 8000-byte payload limit); each API process holds one
connection of its own, outside the pool, that LISTENs and hands every notification on
(`pixelfleet.postgres_notifications`). What a dropped connection missed, the watchers' slow
re-read of the record repairs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from pixelfleet.events import EventReceiver, TaskEvent, json_receiver
from pixelfleet.postgres_notifications import NotificationListener, notify

CHANNEL = "pixelfleet_events"
# How long an API process's start waits for its listening connection before it serves anyway.
CONNECT_WAIT_SECONDS = 10.0


class PostgresNotifyEvents:
    def __init__(self, engine: AsyncEngine, dsn: str) -> None:
        self.engine = engine
        self.dsn = dsn

    async def publish(self, event: TaskEvent) -> None:
        await notify(self.engine, CHANNEL, event.to_json())

    @asynccontextmanager
    async def listening(self, deliver: EventReceiver) -> AsyncIterator[None]:
        listener = NotificationListener(self.dsn, CHANNEL, json_receiver(deliver))
        await listener.start()
        try:
            with contextlib.suppress(TimeoutError):
                # Without it meanwhile, the process serves anyway: watchers re-read the record.
                await asyncio.wait_for(listener.tried.wait(), CONNECT_WAIT_SECONDS)
            yield
        finally:
            await listener.close()

    async def close(self) -> None:
        return None  # the engine is the context's
