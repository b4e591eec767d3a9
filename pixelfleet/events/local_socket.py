"""Task events as datagrams between the processes of one machine (the embedded mode).

An API process binds a Linux abstract-namespace `AF_UNIX` datagram socket (no file: nothing
stale after a crash, no path length limit, gone with the process); every process that changes
a task (a worker, the scheduler, the API itself) sends each event to it as a few hundred bytes
of JSON, without blocking. Several API processes on one database each bind one of
`LISTENER_SLOTS` names; a publisher sends to every slot (an unbound one refuses at once).

The names are derived from the database and the deployment's signing key, so processes of one
deployment meet and no other user can guess them. Abstract names are visible to every local
user once bound, so a listener also takes only datagrams whose sender runs as its own user
(checked by the kernel: `SO_PASSCRED`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import socket
import struct
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url

from pixelfleet.events import EventReceiver, TaskEvent

log = logging.getLogger(__name__)

LISTENER_SLOTS = 4
MAX_DATAGRAM = 64 * 1024
# Room for the queue of datagrams a busy loop has not read yet.
RECEIVE_BUFFER_BYTES = 1024 * 1024
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def local_events_supported() -> bool:
    """Abstract-namespace sockets are Linux's own."""
    return sys.platform.startswith("linux")


def channel_addresses(database_url: str, key: str) -> list[str]:
    """The abstract socket names of the listeners of the deployment whose database is
    `database_url` and whose signing key is `key` (its password is left out)."""
    database = make_url(database_url).render_as_string(hide_password=True)
    names = []
    for slot in range(LISTENER_SLOTS):
        digest = hmac.new(
            key.encode(), f"events:{database}:{slot}".encode(), hashlib.sha256
        ).hexdigest()
        names.append(f"\0pixelfleet-events-{digest[:24]}")
    return names


class LocalSocketEvents:
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self._sender: socket.socket | None = None

    async def publish(self, event: TaskEvent) -> None:
        datagram = event.to_json().encode()
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        for address in self.addresses:
            try:
                self._sender.sendto(datagram, address)
            except (ConnectionRefusedError, FileNotFoundError):
                continue  # no listener in this slot
            except BlockingIOError:
                # The listener is behind: its watchers' slow re-read of the record repairs it.
                log.debug("event for task %s dropped: listener busy", event.task_id)
            except OSError:
                log.warning("could not publish an event for task %s", event.task_id, exc_info=True)

    @asynccontextmanager
    async def listening(self, deliver: EventReceiver) -> AsyncIterator[None]:
        receiver = self._bind()
        if receiver is None:
            log.warning(
                "every local event slot is taken: this process's event streams read the "
                "database instead"
            )
            yield
            return
        loop = asyncio.get_running_loop()
        loop.add_reader(receiver.fileno(), _receive, receiver, deliver)
        try:
            yield
        finally:
            loop.remove_reader(receiver.fileno())
            receiver.close()

    def _bind(self) -> socket.socket | None:
        for address in self.addresses:
            receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                receiver.bind(address)
            except OSError:
                receiver.close()
                continue
            receiver.setblocking(False)
            receiver.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            return receiver
        return None

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None


def _receive(receiver: socket.socket, deliver: EventReceiver) -> None:
    """Hands on every datagram waiting on `receiver` that a process of this user sent."""
    own_uid = os.getuid()
    while True:
        try:
            datagram, ancillary, _flags, _sender = receiver.recvmsg(
                MAX_DATAGRAM, socket.CMSG_SPACE(_CREDENTIALS.size)
            )
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            log.warning("could not read the local event socket", exc_info=True)
            return
        if _sender_uid(ancillary) != own_uid:
            log.warning("ignored an event datagram from another user")
            continue
        try:
            event = TaskEvent.from_json(datagram)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignored a malformed event datagram")
            continue
        deliver(event)


def _sender_uid(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            _pid, uid, _gid = _CREDENTIALS.unpack(data[: _CREDENTIALS.size])
            return int(uid)
    return None
