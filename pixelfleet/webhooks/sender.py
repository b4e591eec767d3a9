"""The webhook sender port: how a task's due webhook deliveries get sent once the final state
that made them due is committed, and the in-process adapter (the embedded mode sends them
from the process that finished the task, in the background).

Sending is best effort here: the upkeep sweep sends whatever a sender misses, so a sender
never fails its caller. The Celery adapter (a message to the workers' control queue) lives
with the other Celery messages, in `pixelfleet/launchers/celery.py`."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)

# How long closing waits for webhook sends already under way.
CLOSE_GRACE_SECONDS = 10.0

SendDue = Callable[[uuid.UUID], Awaitable[int]]
"""Makes the next attempt of a task's due deliveries, returning how many it made."""


class WebhookSender(Protocol):
    async def send_due(self, task_id: uuid.UUID) -> None:
        """Starts sending the task's due webhook deliveries (their outbox rows are committed);
        best effort: the upkeep job sends whatever this misses."""
        ...

    async def close(self) -> None: ...


class BackgroundWebhookSender:
    """Sends a task's webhooks from this process, in the background: the caller does not wait
    for the receivers."""

    def __init__(self, send_due: SendDue) -> None:
        self._send_due = send_due
        self._sending: set[asyncio.Task[int]] = set()

    async def send_due(self, task_id: uuid.UUID) -> None:
        sending = asyncio.create_task(self._send(task_id))
        self._sending.add(sending)
        sending.add_done_callback(self._sent)

    async def _send(self, task_id: uuid.UUID) -> int:
        return await self._send_due(task_id)

    def _sent(self, sending: asyncio.Task[int]) -> None:
        self._sending.discard(sending)
        if not sending.cancelled() and sending.exception() is not None:
            log.warning(
                "webhooks: a send failed; the sweep will retry it", exc_info=sending.exception()
            )

    async def settle(self, within: float = CLOSE_GRACE_SECONDS) -> None:
        """Waits for the webhook sends under way; those still going after `within` seconds are
        cancelled (their claim lapses and the sweep sends them again)."""
        if self._sending:
            _done, pending = await asyncio.wait(set(self._sending), timeout=within)
            for task in pending:
                task.cancel()

    async def close(self) -> None:
        await self.settle()
