"""The dispatch port: how an accepted task reaches a worker (DESIGN.md section 1).

`dispatch` is called after the task's row is committed and may be called again for the same
task (the re-dispatch job): every launcher makes a second dispatch harmless. Webhooks have
their own port (`pixelfleet/webhooks/sender.py`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pixelfleet.models import Task


class DispatchFailed(Exception):
    """The task could not be handed out now; it stays queued and is re-dispatched later."""


class Launcher(Protocol):
    async def dispatch(self, task: Task) -> None: ...

    async def held(self, task: Task) -> None:
        """`task` waits its turn in the database (fair sharing: `jobs/fair_dispatch.py`); it
        is dispatched when its turn comes. Shows it where the mode shows its tasks. Called
        after the commit; never raises."""

    async def requeued(self, task: Task) -> None:
        """`task` went back to the queue after it started (its worker gave it back, or the
        recovery job took it from a worker that stopped): hands it out again where the mode's
        own redelivery does not. Called after the commit; never raises."""

    async def withdrawn(self, task: Task) -> None:
        """`task` was cancelled while a worker ran it: tells that worker now, where it would
        otherwise see it at its next look. Called after the commit; never raises."""

    async def dropped(self, task: Task) -> None:
        """`task` was cancelled before a worker started it: lets the mode's queue drop its
        message where it keeps one (a worker that takes it anyway finds it cancelled). Called
        after the commit; never raises."""

    async def erased(self, task_ids: Sequence[uuid.UUID]) -> None:
        """The tasks were deleted with their account (each was cancelled first, if it had not
        finished): removes what the mode keeps of them beside the database. Called after the
        commit; never raises."""

    async def close(self) -> None: ...


class Doorbell(Protocol):
    """What wakes the embedded workers (adapters in `launchers.doorbells`)."""

    async def ring(self) -> None:
        """Tells the queue's idle workers that work is waiting. Never raises."""

    async def ring_cancelled(self) -> None:
        """Tells the queue's busy workers that a running task was cancelled. Never raises."""

    async def close(self) -> None: ...


class DoorbellListener(Protocol):
    """What an embedded worker hears of its doorbell."""

    rung: asyncio.Event
    """Set when work was queued (the worker clears it before it looks at the queue)."""
    cancelled: asyncio.Event
    """Set when a running task was cancelled (the worker clears it before it looks whether
    the task it runs is still its own)."""
    listening: asyncio.Event
    """Set while a ring can reach this listener."""
    idle: bool
    """True while the worker waits for a ring (a busy worker passes a ring of work on)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class EmbeddedLauncher:
    """The `tasks` table is the embedded workers' queue: a dispatch only rings their doorbell,
    so that an idle worker looks at the queue at once."""

    def __init__(self, doorbell: Doorbell) -> None:
        self.doorbell = doorbell

    async def dispatch(self, task: Task) -> None:
        await self.doorbell.ring()

    async def held(self, task: Task) -> None:
        """Nothing to do: the workers take only the tasks handed out."""
        return None

    async def requeued(self, task: Task) -> None:
        await self.doorbell.ring()

    async def withdrawn(self, task: Task) -> None:
        await self.doorbell.ring_cancelled()

    async def dropped(self, task: Task) -> None:
        """Nothing to drop: the queue is the `tasks` table, where the task is cancelled."""
        return None

    async def erased(self, task_ids: Sequence[uuid.UUID]) -> None:
        """Nothing is kept beside the `tasks` table."""
        return None

    async def close(self) -> None:
        await self.doorbell.close()
