"""The dispatch port: how an accepted task reaches a worker (DESIGN.md section 1).

`dispatch` is called after the task's row is committed and may be called again for the same
task (the re-dispatch job): every launcher makes a second dispatch harmless. Webhooks have
their own port (`pixelfleet/webhooks/sender.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pixelfleet.models import Task


class DispatchFailed(Exception):
    """The task could not be handed out now; it stays queued and is re-dispatched later."""


class Launcher(Protocol):
    async def dispatch(self, task: Task) -> None: ...

    async def close(self) -> None: ...


class EmbeddedLauncher:
    """The embedded workers poll the `tasks` table themselves: nothing to send."""

    async def dispatch(self, task: Task) -> None:
        return None

    async def close(self) -> None:
        return None
