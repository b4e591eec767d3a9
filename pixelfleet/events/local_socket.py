"""Task events as datagrams between the processes of one machine (the embedded mode on SQLite).

An API process binds a local datagram socket (`pixelfleet.local_datagrams`); every process that
changes a task (a worker, the scheduler, the API itself) sends each event to it as a few hundred
bytes of JSON, without blocking. Several API processes on one database each bind one of
`LISTENER_SLOTS` names; a publisher sends to every slot (an unbound one refuses at once).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pixelfleet.events import EventReceiver, TaskEvent, json_receiver
from pixelfleet.local_datagrams import DatagramReceiver, DatagramSender, datagram_address

log = logging.getLogger(__name__)

LISTENER_SLOTS = 4


def channel_addresses(database_url: str, key: str) -> list[str]:
    """The socket names of the event listeners of the deployment whose database is
    `database_url` and whose signing key is `key`."""
    return [datagram_address(database_url, key, f"events-{slot}") for slot in range(LISTENER_SLOTS)]


class LocalSocketEvents:
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self._sender = DatagramSender()

    async def publish(self, event: TaskEvent) -> None:
        # A listener that is behind loses the event: its watchers' slow re-read of the record
        # repairs it.
        datagram = event.to_json().encode()
        for address in self.addresses:
            self._sender.send(datagram, address)

    @asynccontextmanager
    async def listening(self, deliver: EventReceiver) -> AsyncIterator[None]:
        receiver = DatagramReceiver.bind(self.addresses, json_receiver(deliver))
        if receiver is None:
            log.warning(
                "every local event slot is taken: this process's event streams read the "
                "database instead"
            )
            yield
            return
        try:
            yield
        finally:
            receiver.close()

    async def close(self) -> None:
        self._sender.close()
