"""The webhook sender port: how a task's due webhook deliveries get sent once the final state
that made them due is committed, and the in-process adapter (the embedded mode sends them
from the process that finished the task, in the background).

Sending is best effort here: the upkeep sweep sends whatever a sender misses, so a sender
never fails its caller. The Celery adapter (a message to the workers' control queue) lives
with the other Celery messages, in `pixelfleet/launchers/celery.py`."""

from __future__ import annotations

import uuid
from typing import Protocol

from pixelfleet.background_sends import CLOSE_GRACE_SECONDS, BackgroundSends, Send


class WebhookSender(Protocol):
    async def send_due(self, task_id: uuid.UUID) -> None:
        """Starts sending the task's due webhook deliveries (their outbox rows are committed);
        best effort: the upkeep job sends whatever this misses."""
        ...

    async def close(self) -> None: ...


class BackgroundWebhookSender:
    """Sends a task's webhooks from this process, in the background: the caller does not wait
    for the receivers."""

    def __init__(self, send_due: Send) -> None:
        self.sends = BackgroundSends(send_due, "webhooks")

    async def send_due(self, task_id: uuid.UUID) -> None:
        self.sends.start(task_id)

    async def settle(self, within: float = CLOSE_GRACE_SECONDS) -> None:
        """Waits for the webhook sends under way (`BackgroundSends.settle`)."""
        await self.sends.settle(within)

    async def close(self) -> None:
        await self.settle()
