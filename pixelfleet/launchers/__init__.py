"""The launcher port: how an accepted task reaches a worker (DESIGN.md section 1).

`dispatch` is called after the task's row is committed and may be called again for the same
task (the re-dispatch job): every launcher makes a second dispatch harmless."""

from __future__ import annotations

import uuid
from typing import Protocol


class DispatchFailed(Exception):
    """The task could not be handed out now; it stays queued and is re-dispatched later."""


class Launcher(Protocol):
    async def dispatch(self, task_id: uuid.UUID) -> None: ...

    async def close(self) -> None: ...


class EmbeddedLauncher:
    """The embedded workers poll the `tasks` table themselves: nothing to send."""

    async def dispatch(self, task_id: uuid.UUID) -> None:
        return None

    async def close(self) -> None:
        return None
