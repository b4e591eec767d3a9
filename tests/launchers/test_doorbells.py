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
from pixelfleet.postgres_notifications import asyncpg_dsn
from tests.harness.postgres import PostgresServer
from tests.local_users import send_as_another_user

KEY = "a-signing-key-" + "k" * 40
# A ring that does not come fails the test after this long (a ring takes microseconds).
RING_WITHIN = 10.0


def a_queue() -> str:
    """The database URL of a queue of its own."""
    return f"sqlite+aiosqlite:////data/{uuid.uuid4()}/pixelfleet.db"


async def rung(listener: DatagramListener | PostgresListener) -> None:
    await asyncio.wait_for(listener.rung.wait(), RING_WITHIN)


async def listening(queue: str, *indexes: int) -> list[DatagramListener]:
    listeners = [DatagramListener(queue, KEY, index) for index in indexes]
    for listener in listeners:
        await listener.start()
    return listeners


@pytest.mark.parametrize(
    ("listeners", "known_to_the_ringer"),
    [
        pytest.param(2, 2, id="as-many-as-it-knows"),
        # `pixelfleet up --workers 3` while a command run beside it has the default count.
        pytest.param(3, 1, id="beyond-the-count-it-knows"),
    ],
)
async def test_a_ring_wakes_every_worker_of_its_queue(
    listeners: int, known_to_the_ringer: int
) -> None:
    queue = a_queue()
    workers = await listening(queue, *range(listeners))
    doorbell = DatagramDoorbell(queue, KEY, workers=known_to_the_ringer)
    try:
        await doorbell.ring()
        for worker in workers:
            await rung(worker)
    finally:
        await doorbell.close()
        for worker in workers:
            await worker.close()


async def test_a_cancel_is_told_apart_from_queued_work() -> None:
    queue = a_queue()
    (worker,) = await listening(queue, 0)
    doorbell = DatagramDoorbell(queue, KEY, workers=1)
    try:
        await doorbell.ring_cancelled()
        await asyncio.wait_for(worker.cancelled.wait(), RING_WITHIN)
        assert not worker.rung.is_set()  # an idle worker does not look at the queue for it
    finally:
        await doorbell.close()
        await worker.close()


@pytest.mark.parametrize("other_deployment", ["another-database", "another-key"])
async def test_a_ring_reaches_only_its_own_queue(other_deployment: str) -> None:
    ours = a_queue()
    theirs = DatagramListener(
        a_queue() if other_deployment == "another-database" else ours,
        KEY if other_deployment == "another-database" else KEY + "2",
        0,
    )
    (mine,) = await listening(ours, 0)
    await theirs.start()
    doorbell = DatagramDoorbell(ours, KEY, workers=1)
    try:
        assert theirs.listening.is_set()
        await doorbell.ring()
        await rung(mine)
        assert not theirs.rung.is_set()
    finally:
        await doorbell.close()
        await mine.close()
        await theirs.close()


async def test_a_ring_from_another_local_user_wakes_nobody() -> None:
    queue = a_queue()
    (worker,) = await listening(queue, 0)
    try:
        # A local user who reads the bound name (it is visible in /proc/net/unix).
        send_as_another_user(b"w", worker.address)
        doorbell = DatagramDoorbell(queue, KEY, workers=1)
        await doorbell.ring_cancelled()  # then a ring of this user's, which comes after it
        await asyncio.wait_for(worker.cancelled.wait(), RING_WITHIN)
        await doorbell.close()
        assert not worker.rung.is_set()
    finally:
        await worker.close()


async def test_rings_nobody_hears_or_that_overflow_a_worker_are_harmless() -> None:
    queue = a_queue()
    doorbell = DatagramDoorbell(queue, KEY, workers=2)
    try:
        await doorbell.ring()  # nobody there yet: nothing happens, nothing raises
        (worker,) = await listening(queue, 0)
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
    first, second = await listening(a_queue(), 0, 0)
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


async def test_a_notification_wakes_every_listening_worker(database: str) -> None:
    engine = create_engine(database)
    doorbell = PostgresDoorbell(engine)
    workers = [PostgresListener(asyncpg_dsn(database)) for _ in range(2)]
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
    worker = PostgresListener(asyncpg_dsn(database))
    admin = await asyncpg.connect(asyncpg_dsn(database))
    try:
        await worker.start()
        await asyncio.wait_for(worker.listening.wait(), RING_WITHIN)
        assert worker.listener.connection is not None
        cut = worker.listener.connection.get_server_pid()
        await admin.execute("SELECT pg_terminate_backend($1)", cut)
        # Back on a new connection, it rings itself for what was queued while it was deaf...
        await rung(worker)
        assert worker.listener.connection is not None
        assert worker.listener.connection.get_server_pid() != cut
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
