"""Waking the embedded workers: a committed task rings a doorbell, and an idle worker that hears
it looks at the queue at once, instead of polling the `tasks` table all the time.

Two halves: the `Doorbell` (the port, in `launchers`) is rung by whoever queues or requeues
work, or cancels a running task (the embedded launcher, after the commit, so a rolled-back
change rings nothing); a worker listens with a `DoorbellListener`, whose `rung` (work) and
`cancelled` events it waits on. A ring carries no task. A ring of work wakes one worker, not
all of them: on one machine it goes to the workers in turn, and a worker that hears it while
busy (not `idle`) passes it on to the next, until an idle one hears it or each has heard it
once. (Every worker looks at the queue again after each task, so a ring that only busy ones
heard is not lost.) Waking every idle worker for each task made all of them try the claim,
and on two cores the losers' work delayed the winner and the API's answer alike. A cancel
reaches every worker: each busy one looks whether its task is still its own. A ring that is
lost (a worker restarting, a listener reconnecting) only delays the work until the worker's
slow fallback look (`PIXELFLEET_WORKER_POLL_SECONDS`), so nothing here may fail the one who
rings.

Adapters:
- one machine (SQLite, one `pixelfleet up`): local datagram sockets (`pixelfleet.local_datagrams`),
  one per worker, named after the queue's database and the signing key. Any process of the
  deployment on the machine that queues work in that database (the API, a command) can ring them.
- PostgreSQL (several `pixelfleet up` may share one database): `pg_notify` on the queue's
  channel, and one LISTEN connection per worker process that reconnects when it is lost
  (`pixelfleet.postgres_notifications`). A notification reaches every listener, so there each
  idle worker tries the claim.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from pixelfleet.local_datagrams import DatagramReceiver, DatagramSender, datagram_address
from pixelfleet.postgres_notifications import NotificationListener, notify
from pixelfleet.settings import MAX_EMBEDDED_WORKERS

log = logging.getLogger(__name__)

QUEUE_CHANNEL = "pixelfleet_queue"
"""The PostgreSQL notification channel of the rings (its payload says which kind)."""

WORK = b"w"
"""What a ring says: work is waiting (a task was queued or requeued)..."""
CANCEL = b"c"
"""...or a running task was cancelled."""
PASS_ON_ALL = 255
"""A ring of work may carry one byte after `WORK`: how many more workers a busy hearer may pass
it on to (each hearer passes at most its count of workers less one). A ring fresh from a
doorbell carries this; a bare `WORK` is passed on to none."""


def work_ring(passes: int) -> bytes:
    return WORK + bytes([max(0, min(passes, PASS_ON_ALL))])


def passes_of(message: bytes) -> int:
    """How many more workers a ring of work may be passed on to."""
    return message[1] if len(message) == 2 and message[:1] == WORK else 0


class _RingEvents:
    """What a listener sets as the rings it hears say."""

    def __init__(self) -> None:
        self.rung = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.listening = asyncio.Event()
        self.idle = False

    def heard(self, message: bytes) -> None:
        if message == CANCEL:
            self.cancelled.set()
            return
        self.rung.set()
        if self.idle:
            self.idle = False  # taken by this ring: the next one it hears before it waits again
        elif passes := passes_of(message):  # goes on to a worker that can take it
            self.pass_on(passes)

    def pass_on(self, passes: int) -> None:
        """Hands a ring of work this busy worker heard to another worker (where there is one to
        hand it to)."""
        return None


class NoDoorbell:
    """Where no doorbell can be had: workers find work with their fallback look only."""

    async def ring(self) -> None:
        return None

    async def ring_cancelled(self) -> None:
        return None

    async def close(self) -> None:
        return None


class NoDoorbellListener(_RingEvents):
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


def worker_address(database_url: str, key: str, index: int) -> str:
    """The socket name of the embedded worker `index` of the queue in `database_url`, in the
    deployment whose signing key is `key`."""
    return datagram_address(database_url, key, f"worker-{index}")


class DatagramDoorbell:
    """Rings by sending a datagram to the workers' sockets. Workers are numbered from 0 with no
    gap. A ring of work goes to one of the first `workers` (how many this process's settings
    say), in turn, skipping a socket nobody listens on. A cancel goes to every index up to
    `workers` and past it for as long as a socket answers (the count of a `pixelfleet up
    --workers N` need not be in every process's settings); so does a ring of work when none
    of the first `workers` listens."""

    def __init__(self, database_url: str, key: str, workers: int) -> None:
        self.addresses = [worker_address(database_url, key, i) for i in range(MAX_EMBEDDED_WORKERS)]
        self.workers = workers
        self.sender = DatagramSender()
        self._turn = 0

    async def ring(self) -> None:
        count = max(1, min(self.workers, len(self.addresses)))
        for step in range(count):
            index = (self._turn + step) % count
            if self.sender.send(work_ring(PASS_ON_ALL), self.addresses[index]):
                return
        self._send(work_ring(PASS_ON_ALL))

    async def ring_cancelled(self) -> None:
        self._send(CANCEL)

    def _send(self, message: bytes) -> None:
        for index, address in enumerate(self.addresses):
            # A worker that is behind was rung already and has not looked yet.
            if not self.sender.send(message, address) and index >= self.workers:
                return

    async def close(self) -> None:
        self.sender.close()


class DatagramListener(_RingEvents):
    """A worker's socket: each datagram that arrives sets `rung` or `cancelled`, as it says (one
    look answers however many came); a ring of work heard while busy is passed on to the next
    of the `workers` that listens. If its name is taken (another process of the same index is
    still listening), the worker goes on with its fallback look."""

    def __init__(self, database_url: str, key: str, index: int, workers: int) -> None:
        super().__init__()
        self.address = worker_address(database_url, key, index)
        self.index = index
        self.workers = max(1, min(workers, MAX_EMBEDDED_WORKERS))
        self.others = [
            worker_address(database_url, key, (index + step) % self.workers)
            for step in range(1, self.workers)
        ]
        self.receiver: DatagramReceiver | None = None
        self.sender = DatagramSender()

    def pass_on(self, passes: int) -> None:
        passes = min(passes, len(self.others))
        for address in self.others:
            if passes == 0:
                return
            if self.sender.send(work_ring(passes - 1), address):
                return
            passes -= 1  # nobody there: the next one

    async def start(self) -> None:
        self.receiver = DatagramReceiver.bind([self.address], self.heard)
        if self.receiver is None:
            log.warning(
                "another process listens as this worker; it finds work by looking every "
                "PIXELFLEET_WORKER_POLL_SECONDS only"
            )
            return
        self.listening.set()

    async def close(self) -> None:
        if self.receiver is None:
            return
        self.listening.clear()
        self.receiver.close()
        self.receiver = None
        self.sender.close()


class PostgresDoorbell:
    """Rings with `pg_notify` on the queue's channel, on a connection of the process's pool
    (outside any transaction: the work it announces is committed already)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def ring(self) -> None:
        await notify(self.engine, QUEUE_CHANNEL, WORK.decode())

    async def ring_cancelled(self) -> None:
        await notify(self.engine, QUEUE_CHANNEL, CANCEL.decode())

    async def close(self) -> None:
        return None


class PostgresListener(_RingEvents):
    """The worker's LISTEN connection on the queue's channel: each notification sets `rung` or
    `cancelled`, as it says; once it listens again after a lost connection, it sets both, for
    what happened meanwhile."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.listener = NotificationListener(
            dsn, QUEUE_CHANNEL, lambda payload: self.heard(payload.encode()), self._missed
        )
        self.listening = self.listener.listening

    def _missed(self) -> None:
        self.rung.set()
        self.cancelled.set()

    async def start(self) -> None:
        await self.listener.start()

    async def close(self) -> None:
        await self.listener.close()
