"""The embedded workers' doorbell, over abstract datagram sockets on one machine (a ring of
work wakes one idle worker; a busy one passes it on) and over LISTEN/NOTIFY on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from pixelfleet.db import create_engine
from pixelfleet.launchers.doorbells import (
    CANCEL,
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


async def listening(
    queue: str, *indexes: int, workers: int | None = None, idle: bool = True
) -> list[DatagramListener]:
    count = workers if workers is not None else len(indexes)
    listeners = [DatagramListener(queue, KEY, index, count) for index in indexes]
    for listener in listeners:
        listener.idle = idle
        await listener.start()
    return listeners


async def after_what_came_before(doorbell: DatagramDoorbell, *workers: DatagramListener) -> None:
    """Returns once each worker has heard a cancel rung now: whatever the doorbell sent each of
    them before it has arrived."""
    for worker in workers:
        worker.cancelled.clear()
    await doorbell.ring_cancelled()
    for worker in workers:
        await asyncio.wait_for(worker.cancelled.wait(), RING_WITHIN)


async def test_a_ring_of_work_wakes_one_idle_worker_and_the_next_ring_the_next() -> None:
    queue = a_queue()
    first, second = await listening(queue, 0, 1)
    doorbell = DatagramDoorbell(queue, KEY, workers=2)
    try:
        await doorbell.ring()
        await rung(first)
        await after_what_came_before(doorbell, first, second)
        assert not second.rung.is_set()
        assert not first.idle  # taken by the ring it heard

        second.idle = True
        await doorbell.ring()
        await rung(second)
        await after_what_came_before(doorbell, first, second)
        assert not second.idle
    finally:
        await doorbell.close()
        for worker in (first, second):
            await worker.close()


@pytest.mark.parametrize(
    "known_to_the_ringer",
    [
        pytest.param(3, id="as-many-as-it-knows"),
        # `pixelfleet up --workers 3` while a command run beside it has the default count.
        pytest.param(1, id="fewer-than-there-are"),
    ],
)
async def test_a_busy_worker_passes_a_ring_of_work_on_to_an_idle_one(
    known_to_the_ringer: int,
) -> None:
    queue = a_queue()
    busy, also_busy = await listening(queue, 0, 1, workers=3, idle=False)
    (idle,) = await listening(queue, 2, workers=3)
    doorbell = DatagramDoorbell(queue, KEY, workers=known_to_the_ringer)
    try:
        await doorbell.ring()  # to worker 0 first
        await rung(idle)
        assert busy.rung.is_set()  # it looks at the queue after its task all the same
        assert not idle.idle
    finally:
        await doorbell.close()
        for worker in (busy, also_busy, idle):
            await worker.close()


async def test_a_ring_of_work_that_only_busy_workers_hear_ends_once_each_heard_it() -> None:
    queue = a_queue()
    workers = await listening(queue, 0, 1, 2, workers=3, idle=False)
    doorbell = DatagramDoorbell(queue, KEY, workers=3)
    try:
        await doorbell.ring()
        for worker in workers:
            await rung(worker)
        for worker in workers:
            worker.rung.clear()
        first, last = workers[0], workers[-1]
        # Passed on by the last, it would come round to the first again: a cancel sent after
        # it from the last one's socket arrives after it.
        last.sender.send(CANCEL, first.address)
        await asyncio.wait_for(first.cancelled.wait(), RING_WITHIN)
        assert not first.rung.is_set()
    finally:
        await doorbell.close()
        for worker in workers:
            await worker.close()


async def test_a_ring_of_work_skips_a_worker_that_is_not_there() -> None:
    queue = a_queue()
    (busy,) = await listening(queue, 0, workers=3, idle=False)
    (idle,) = await listening(queue, 2, workers=3)  # worker 1 is restarting
    doorbell = DatagramDoorbell(queue, KEY, workers=3)
    try:
        await doorbell.ring()
        await rung(idle)
    finally:
        await doorbell.close()
        await busy.close()
        await idle.close()


@pytest.mark.parametrize(
    ("listeners", "known_to_the_ringer"),
    [pytest.param(2, 2, id="as-many-as-it-knows"), pytest.param(3, 1, id="beyond-that-count")],
)
async def test_a_cancel_reaches_every_worker_of_its_queue(
    listeners: int, known_to_the_ringer: int
) -> None:
    queue = a_queue()
    workers = await listening(queue, *range(listeners), idle=False)
    doorbell = DatagramDoorbell(queue, KEY, workers=known_to_the_ringer)
    try:
        await doorbell.ring_cancelled()
        for worker in workers:
            await asyncio.wait_for(worker.cancelled.wait(), RING_WITHIN)
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
        1,
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
    first, second = await listening(a_queue(), 0, 0, workers=1)
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
