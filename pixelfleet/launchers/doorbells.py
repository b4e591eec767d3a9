"""Waking the embedded workers: a committed task rings a doorbell, and an idle worker that hears
it looks at the queue at once, instead of polling the `tasks` table all the time.

Two halves: the `Doorbell` (the port, in `launchers`) is rung by whoever queues or requeues
work, or cancels a running task (the embedded launcher, after the commit, so a rolled-back
change rings nothing); a worker listens with a `DoorbellListener`, whose `rung` (work) and
`cancelled` events it waits on. A ring carries no task: every idle worker that hears work
tries a claim (the ones that lose go back to sleep), and every busy one that hears a cancel
looks whether its task is still its own. A ring that is lost (a worker restarting, a listener
reconnecting) only delays the work until the worker's slow fallback look
(`PIXELFLEET_WORKER_POLL_SECONDS`), so nothing here may fail the one who rings.

Adapters:
- one machine (SQLite, one `pixelfleet up`): Linux abstract-namespace datagram sockets, one per
  worker, named after the queue's database. No file to clean up (a socket goes with its
  process), and any process on the machine that queues work in that database (the API, a
  command) can ring them.
- PostgreSQL (several `pixelfleet up` may share one database): `pg_notify` on the queue's
  channel, and one LISTEN connection per worker process that reconnects when it is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

QUEUE_CHANNEL = "pixelfleet_queue"
"""The PostgreSQL notification channel of the rings (its payload says which kind)."""

MAX_WORKERS = 64
"""The most embedded workers one queue has (PIXELFLEET_EMBEDDED_WORKERS' bound)."""

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
"""How long a lost LISTEN connection waits before each new try (the last repeats)."""

LISTEN_CHECK_SECONDS = 30.0
"""How often a quiet LISTEN connection is asked whether it still works (a server that vanished
without closing it leaves no other trace)."""


WORK = b"w"
"""What a ring says: work is waiting (a task was queued or requeued)..."""
CANCEL = b"c"
"""...or a running task was cancelled."""


class NoDoorbell:
    """Where no doorbell can be had: workers find work with their fallback look only."""

    async def ring(self) -> None:
        return None

    async def ring_cancelled(self) -> None:
        return None

    async def close(self) -> None:
        return None


class NoDoorbellListener:
    def __init__(self) -> None:
        self.rung = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.listening = asyncio.Event()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def first_of(*events: asyncio.Event, within: float) -> None:
    """Returns once one of `events` is set, or after `within` seconds."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def datagrams_supported() -> bool:
    """Abstract-namespace Unix sockets are Linux's own."""
    return sys.platform == "linux" and hasattr(socket, "AF_UNIX")


def worker_address(queue: str, index: int) -> bytes:
    """The abstract socket name of the embedded worker `index` of the queue named `queue` (its
    database): a leading NUL puts it in the abstract namespace, where the path-length limit of
    socket files does not apply."""
    digest = hashlib.sha256(queue.encode()).hexdigest()[:16]
    return f"\0pixelfleet-{digest}-worker-{index}".encode()


class DatagramDoorbell:
    """Rings by sending one byte to each worker's socket. Workers are numbered from 0 with no
    gap, so the ring goes to every index up to `workers` (how many this process's settings
    say) and past it for as long as a socket answers (the count of a `pixelfleet up --workers N`
    need not be in every process's settings)."""

    def __init__(self, queue: str, workers: int) -> None:
        self.queue = queue
        self.workers = workers
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    async def ring(self) -> None:
        self._send(WORK)

    async def ring_cancelled(self) -> None:
        self._send(CANCEL)

    def _send(self, message: bytes) -> None:
        for index in range(MAX_WORKERS):
            try:
                self.sock.sendto(message, worker_address(self.queue, index))
            except ConnectionRefusedError:  # no worker of that index listens now
                if index >= self.workers:
                    return
            except OSError:
                # Its buffer is full (it was rung already and has not looked yet), or any other
                # reason a ring cannot go: the fallback look finds the work.
                continue

    async def close(self) -> None:
        self.sock.close()


class DatagramListener:
    """A worker's socket: each datagram that arrives sets `rung` or `cancelled`, as it says. If
    its name is taken (another process of the same index is still listening), the worker goes on
    with its fallback look."""

    def __init__(self, queue: str, index: int) -> None:
        self.address = worker_address(queue, index)
        self.rung = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.listening = asyncio.Event()
        self.sock: socket.socket | None = None

    async def start(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.bind(self.address)
        except OSError:
            sock.close()
            log.warning(
                "another process listens as this worker; it finds work by looking every "
                "PIXELFLEET_WORKER_POLL_SECONDS only",
                exc_info=True,
            )
            return
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._drain)
        self.listening.set()

    def _drain(self) -> None:
        assert self.sock is not None
        # However many rings came, one look answers them all.
        with contextlib.suppress(BlockingIOError):
            while True:
                if self.sock.recv(16) == CANCEL:
                    self.cancelled.set()
                else:
                    self.rung.set()

    async def close(self) -> None:
        if self.sock is None:
            return
        self.listening.clear()
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        self.sock = None


class PostgresDoorbell:
    """Rings with `pg_notify` on the queue's channel, on a connection of the process's pool
    (outside any transaction: the work it announces is committed already)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def ring(self) -> None:
        await self._notify(WORK)

    async def ring_cancelled(self) -> None:
        await self._notify(CANCEL)

    async def _notify(self, message: bytes) -> None:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(
                    text("SELECT pg_notify(:channel, :message)"),
                    {"channel": QUEUE_CHANNEL, "message": message.decode()},
                )
        except Exception:
            log.warning("could not ring the workers; they look later by themselves", exc_info=True)

    async def close(self) -> None:
        return None


def _setter(event: asyncio.Event) -> Callable[..., None]:
    """A callback that sets `event`, whatever it is called with."""

    def set_event(*_: Any) -> None:
        event.set()

    return set_event


class PostgresListener:
    """One LISTEN connection (asyncpg's own, outside the pool) that sets `rung` or `cancelled` on
    each notification of the queue's channel, as it says. When the connection is lost it
    connects again, with growing delays, and sets both once it listens again, for what happened
    meanwhile."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.rung = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.listening = asyncio.Event()
        self.keeper: asyncio.Task[None] | None = None
        self.connection: asyncpg.Connection | None = None

    async def start(self) -> None:
        self.keeper = asyncio.create_task(self._keep_listening(), name="doorbell-listener")

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.encode() == CANCEL:
            self.cancelled.set()
        else:
            self.rung.set()

    async def _keep_listening(self) -> None:
        failures = 0
        while True:
            connection = None
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(self.dsn)
                connection.add_termination_listener(_setter(lost))
                await connection.add_listener(QUEUE_CHANNEL, self._notified)
            except Exception as exc:  # whatever it is, the listener must go on trying
                if connection is not None:
                    connection.terminate()
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("cannot listen for queued tasks (%s); trying again in %gs", exc, delay)
                await asyncio.sleep(delay)
                continue
            self.connection = connection
            self.listening.set()
            if failures:
                log.info("listening for queued tasks again")
                self.rung.set()  # for what happened while it did not listen
                self.cancelled.set()
            failures = 0
            await self._until_lost(connection, lost)
            self.listening.clear()
            self.connection = None
            failures = 1
            log.warning("lost the connection that listens for queued tasks; connecting again")

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
        if self.keeper is not None:
            self.keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.keeper
            self.keeper = None
        self.listening.clear()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.close(), 5)
            self.connection = None
