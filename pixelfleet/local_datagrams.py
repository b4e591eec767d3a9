"""Datagrams between the processes of one deployment on one machine: Linux abstract-namespace
`AF_UNIX` sockets (no file: nothing stale after a crash, no path length limit, gone with the
process). The embedded workers' doorbell and the task events of the embedded mode on SQLite
both travel this way.

Names are derived from the database and the deployment's signing key, so that processes of one
deployment meet and no other local user can guess them. Abstract names are visible to every
local user once bound, so a receiver also takes only datagrams whose sender runs as its own user
(checked by the kernel: `SO_PASSCRED`). A send never blocks and never fails its sender: a
receiver that is not there, or is behind, only loses that datagram."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

MAX_DATAGRAM = 64 * 1024
# Room for the queue of datagrams a busy loop has not read yet.
RECEIVE_BUFFER_BYTES = 1024 * 1024
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def local_datagrams_supported() -> bool:
    """Abstract-namespace sockets are Linux's own."""
    return sys.platform.startswith("linux") and hasattr(socket, "AF_UNIX")


def datagram_address(database_url: str, key: str, role: str) -> str:
    """The abstract socket name that `role` (e.g. `worker-0`) binds in the deployment whose
    database is `database_url` and whose signing key is `key`. The database is named by its
    file, wherever the URL was written from, and without its password."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).resolve()))
    database = url.render_as_string(hide_password=True)
    digest = hmac.new(key.encode(), f"{role}:{database}".encode(), hashlib.sha256).hexdigest()
    # A leading NUL puts the name in the abstract namespace.
    return f"\0pixelfleet-{digest[:24]}"


class DatagramSender:
    """Sends datagrams without blocking, from one socket opened at the first send."""

    def __init__(self) -> None:
        self._socket: socket.socket | None = None

    def send(self, datagram: bytes, address: str) -> bool:
        """Sends `datagram` to `address`; False when nothing is bound there. A receiver that is
        behind (its buffer is full) loses the datagram, as does any other failure: logged."""
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.setblocking(False)
        try:
            self._socket.sendto(datagram, address)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except BlockingIOError:
            log.debug("a datagram to a busy local receiver was dropped")
        except OSError:
            log.warning("could not send a local datagram", exc_info=True)
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class DatagramReceiver:
    """A socket bound to one of a deployment's addresses, that hands every datagram a process
    of this user sends to it to `deliver`, on the event loop's thread."""

    def __init__(self, bound: socket.socket, deliver: Callable[[bytes], None]) -> None:
        self._socket = bound
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(bound.fileno(), self._receive)

    @classmethod
    def bind(
        cls, addresses: Iterable[str], deliver: Callable[[bytes], None]
    ) -> DatagramReceiver | None:
        """Receives on the first of `addresses` that no process holds; None when all are."""
        for address in addresses:
            receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                receiver.bind(address)
            except OSError:
                receiver.close()
                continue
            receiver.setblocking(False)
            receiver.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            return cls(receiver, deliver)
        return None

    def _receive(self) -> None:
        """Hands on every datagram waiting that a process of this user sent."""
        own_uid = os.getuid()
        while True:
            try:
                datagram, ancillary, _flags, _sender = self._socket.recvmsg(
                    MAX_DATAGRAM, socket.CMSG_SPACE(_CREDENTIALS.size)
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                log.warning("could not read a local datagram socket", exc_info=True)
                return
            if _sender_uid(ancillary) != own_uid:
                log.warning("ignored a local datagram from another user")
                continue
            self._deliver(datagram)

    def close(self) -> None:
        self._loop.remove_reader(self._socket.fileno())
        self._socket.close()


def _sender_uid(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            _pid, uid, _gid = _CREDENTIALS.unpack(data[: _CREDENTIALS.size])
            return int(uid)
    return None
