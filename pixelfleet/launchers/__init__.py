"""The launcher port: how an accepted task reaches a worker (DESIGN.md section 1), and how a
finished task's webhooks get sent.

`dispatch` is called after the task's row is committed and may be called again for the same
task (the re-dispatch job): every launcher makes a second dispatch harmless."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pixelfleet.context import ProcessContext
    from pixelfleet.models import Task

log = logging.getLogger(__name__)

# How long closing waits for webhook sends already under way.
CLOSE_GRACE_SECONDS = 10.0


class DispatchFailed(Exception):
    """The task could not be handed out now; it stays queued and is re-dispatched later."""


class Launcher(Protocol):
    async def dispatch(self, task: Task) -> None: ...

    async def deliver_webhooks(self, ctx: ProcessContext, task_id: uuid.UUID) -> None:
        """Starts sending the task's due webhook deliveries (their outbox rows are committed);
        best effort: the upkeep job sends whatever this misses."""
        ...

    async def close(self) -> None: ...


class EmbeddedLauncher:
    """The embedded workers poll the `tasks` table themselves: nothing to send. Webhooks go out
    from the process that finished the task, in the background."""

    def __init__(self) -> None:
        self._sending: set[asyncio.Task[int]] = set()

    async def dispatch(self, task: Task) -> None:
        return None

    async def deliver_webhooks(self, ctx: ProcessContext, task_id: uuid.UUID) -> None:
        from pixelfleet.webhooks.delivery import deliver_due

        sending = asyncio.create_task(deliver_due(ctx, task_id=task_id))
        self._sending.add(sending)
        sending.add_done_callback(self._sent)

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
