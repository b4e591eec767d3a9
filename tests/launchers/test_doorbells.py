"""The embedded workers' doorbell: a ring reaches every worker of its queue, over abstract
datagram sockets on one machine and over LISTEN/NOTIFY on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from pixelfleet.db import create_engine
from pixelfleet.launchers.doorbells import (
    DatagramDoorbell,
    DatagramListener,
    PostgresDoorbell,
    PostgresListener,
)
from tests.harness.postgres import PostgresServer

# A ring that does not come fails the test after this long (a ring takes microseconds).
RING_WITHIN = 10.0


async def rung(listener: DatagramListener | PostgresListener) -> None:
    await asyncio.wait_for(listener.rung.wait(), RING_WITHIN)


async def listening(*listeners: DatagramListener) -> list[DatagramListener]:
    for listener in listeners:
        await listener.start()
    return list(listeners)


async def test_a_ring_wakes_every_worker_of_its_queue() -> None:
    queue = f"/data/{uuid.uuid4()}/pixelfleet.db"
    workers = await listening(DatagramListener(queue, 0), DatagramListener(queue, 1))
    doorbell = DatagramDoorbell(queue, workers=2)
    try:
        await doorbell.ring()
        for worker in workers:
            await rung(worker)
    finally:
        await doorbell.close()
        for worker in workers:
            await worker.close()


async def test_a_cancel_is_told_apart_from_queued_work() -> None:
    queue = f"/data/{uuid.uuid4()}/pixelfleet.db"
    (worker,) = await listening(DatagramListener(queue, 0))
    doorbell = DatagramDoorbell(queue, workers=1)
    try:
        await doorbell.ring_cancelled()
        await asyncio.wait_for(worker.cancelled.wait(), RING_WITHIN)
        assert not worker.rung.is_set()  # an idle worker does not look at the queue for it
    finally:
        await doorbell.close()
        await worker.close()


async def test_a_ring_reaches_workers_beyond_the_count_the_ringer_knows() -> None:
    # `pixelfleet up --workers 3` while a command run beside it has the default count.
    queue = f"/data/{uuid.uuid4()}/pixelfleet.db"
    workers = await listening(*(DatagramListener(queue, index) for index in range(3)))
    doorbell = DatagramDoorbell(queue, workers=1)
    try:
        await doorbell.ring()
        for worker in workers:
            await rung(worker)
    finally:
        await doorbell.close()
        for worker in workers:
            await worker.close()


async def test_a_ring_reaches_only_its_own_queue() -> None:
    ours, theirs = (f"/data/{uuid.uuid4()}/pixelfleet.db" for _ in range(2))
    mine, other = await listening(DatagramListener(ours, 0), DatagramListener(theirs, 0))
    doorbell = DatagramDoorbell(ours, workers=1)
    try:
        await doorbell.ring()
        await rung(mine)
        assert not other.rung.is_set()
    finally:
        await doorbell.close()
        await mine.close()
        await other.close()


async def test_rings_nobody_hears_or_that_overflow_a_worker_are_harmless() -> None:
    queue = f"/data/{uuid.uuid4()}/pixelfleet.db"
    doorbell = DatagramDoorbell(queue, workers=2)
    try:
        await doorbell.ring()  # nobody there yet: nothing happens, nothing raises
        (worker,) = await listening(DatagramListener(queue, 0))
        for _ in range(1000):  # far more than a socket's buffer holds
            await doorbell.ring()
        await rung(worker)
        # The worker read them all at once, and hears the next ring.
        worker.rung.clear()
        await doorbell.ring()
        await rung(worker)
        await worker.close()
    finally:
        await doorbell.close()


async def test_a_second_listener_for_the_same_worker_is_refused_quietly() -> None:
    queue = f"/data/{uuid.uuid4()}/pixelfleet.db"
    first, second = await listening(DatagramListener(queue, 0), DatagramListener(queue, 0))
    try:
        assert first.listening.is_set()
        assert not second.listening.is_set()  # it goes on with its fallback look only
    finally:
        await first.close()
        await second.close()


@pytest.fixture
async def database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    name = f"doorbell_{uuid.uuid4().hex[:12]}"
    url = await postgres_server.create_database(name)
    yield url
    await postgres_server.drop_database(name)


def dsn_of(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_a_notification_wakes_every_listening_worker(database: str) -> None:
    engine = create_engine(database)
    doorbell = PostgresDoorbell(engine)
    workers = [PostgresListener(dsn_of(database)) for _ in range(2)]
    try:
        for worker in workers:
            await worker.start()
            await asyncio.wait_for(worker.listening.wait(), RING_WITHIN)
        await doorbell.ring()
        for worker in workers:
            await rung(worker)
            assert not worker.cancelled.is_set()
        await doorbell.ring_cancelled()
        for worker in workers:
            await asyncio.wait_for(worker.cancelled.wait(), RING_WITHIN)
    finally:
        for worker in workers:
            await worker.close()
        await doorbell.close()
        await engine.dispose()


async def test_a_listener_whose_connection_is_cut_listens_again(database: str) -> None:
    engine = create_engine(database)
    doorbell = PostgresDoorbell(engine)
    worker = PostgresListener(dsn_of(database))
    admin = await asyncpg.connect(dsn_of(database))
    try:
        await worker.start()
        await asyncio.wait_for(worker.listening.wait(), RING_WITHIN)
        assert worker.connection is not None
        cut = worker.connection.get_server_pid()
        await admin.execute("SELECT pg_terminate_backend($1)", cut)
        # Back on a new connection, it rings itself for what was queued while it was deaf...
        await rung(worker)
        assert worker.connection is not None
        assert worker.connection.get_server_pid() != cut
        # ...and hears the doorbell again.
        worker.rung.clear()
        await doorbell.ring()
        await rung(worker)
    finally:
        await admin.close()
        await worker.close()
        await doorbell.close()
        await engine.dispose()


async def test_a_ring_when_the_database_is_away_is_harmless(
    postgres_server: PostgresServer,
) -> None:
    engine = create_engine(postgres_server.url("no_such_database"))
    try:
        await PostgresDoorbell(engine).ring()  # logged; the fallback look finds the task
    finally:
        await engine.dispose()
