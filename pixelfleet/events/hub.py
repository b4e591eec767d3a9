"""The API process's fan-out of task events.

One listener per process (a local socket, a PostgreSQL LISTEN connection or one Redis stream
reader: the event channel's `listening`) hands every event it receives to the hub; each watcher
(an event stream, a long-poll) waits on the events of its own task only. N watchers cost one
listener, not N. A watch ends with its block: nothing is kept for a task nobody watches."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Iterator

from pixelfleet.events import TaskEvent

# Events a watcher has not taken yet, per watcher; older ones are dropped first (a watcher that
# falls behind reads the record anyway, and the newest event says where the task stands).
PENDING_LIMIT = 32


class TaskWatch:
    """The events of one task, as they arrive, for one watcher."""

    def __init__(self, task_id: uuid.UUID) -> None:
        self.task_id = task_id
        self._pending: deque[TaskEvent] = deque(maxlen=PENDING_LIMIT)
        self._arrived = asyncio.Event()

    def _put(self, event: TaskEvent) -> None:
        self._pending.append(event)
        self._arrived.set()

    async def next(self, within: float) -> TaskEvent | None:
        """The task's next event, or None once `within` seconds pass without one."""
        if not self._pending:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), within)
        return self._pending.popleft() if self._pending else None


class EventHub:
    """Task id → the watches of that task. Used from the event loop's thread only."""

    def __init__(self) -> None:
        self._watches: dict[uuid.UUID, set[TaskWatch]] = {}

    def deliver(self, event: TaskEvent) -> None:
        """Hands `event` to every watch of its task (none: it is dropped at once)."""
        for watch in self._watches.get(event.task_id, ()):
            watch._put(event)

    @contextlib.contextmanager
    def watch(self, task_id: uuid.UUID) -> Iterator[TaskWatch]:
        """Watches the task's events for the length of the block. Start watching before the
        first read of the task's record: then no change after that read can be missed."""
        watch = TaskWatch(task_id)
        self._watches.setdefault(task_id, set()).add(watch)
        try:
            yield watch
        finally:
            watches = self._watches.get(task_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[task_id]

    @property
    def watched_tasks(self) -> int:
        """How many tasks have at least one watcher now."""
        return len(self._watches)
