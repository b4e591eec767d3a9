"""Task events: what workers announce as a task moves (stage, percent, final state).

The database stays the record; events are the fast path for watchers (the API's event stream,
the operator). The embedded mode has no broker and publishes nowhere: its watchers read the
database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pixelfleet.db import utcnow
from pixelfleet.models import Task

EVENTS_STREAM = "pixelfleet:events"


@dataclass(frozen=True)
class TaskEvent:
    task_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    progress: int
    stage: str | None
    attempts: int = 0
    worker: str | None = None
    error_code: str | None = None
    at: datetime = field(default_factory=utcnow)

    def to_fields(self) -> dict[str, str]:
        """The event as flat string fields (a Redis stream entry)."""
        fields = {
            "task_id": str(self.task_id),
            "user_id": str(self.user_id),
            "status": self.status,
            "progress": str(self.progress),
            "stage": self.stage or "",
            "attempts": str(self.attempts),
            "worker": self.worker or "",
            "error_code": self.error_code or "",
            "at": self.at.isoformat(),
        }
        return fields

    @classmethod
    def from_task(cls, task: Task) -> TaskEvent:
        """The event that announces `task` as it is now."""
        return cls(
            task_id=task.id,
            user_id=task.user_id,
            status=task.status,
            progress=task.progress,
            stage=task.stage,
            attempts=task.attempts,
            worker=task.worker,
            error_code=task.error_code,
        )

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> TaskEvent:
        return cls(
            task_id=uuid.UUID(fields["task_id"]),
            user_id=uuid.UUID(fields["user_id"]),
            status=fields["status"],
            progress=int(fields["progress"]),
            stage=fields.get("stage") or None,
            attempts=int(fields.get("attempts") or 0),
            worker=fields.get("worker") or None,
            error_code=fields.get("error_code") or None,
            at=datetime.fromisoformat(fields["at"]),
        )


class EventChannel(Protocol):
    async def publish(self, event: TaskEvent) -> None:
        """Announces an event; never raises (an event lost is repaired from the database)."""
        ...

    async def latest_id(self) -> str:
        """A position in the channel: read it before the database so `follow` misses nothing."""
        ...

    def follow(
        self, task_id: uuid.UUID, after: str, wait_seconds: float
    ) -> AsyncIterator[TaskEvent | None]:
        """The task's events after `after`, and None after each `wait_seconds` without one."""
        ...


class NoEvents:
    """The embedded mode's channel carries nothing: its watchers read the database each wait."""

    async def publish(self, event: TaskEvent) -> None:
        return None

    async def latest_id(self) -> str:
        return "0-0"

    async def follow(
        self, task_id: uuid.UUID, after: str, wait_seconds: float
    ) -> AsyncIterator[TaskEvent | None]:
        while True:
            await asyncio.sleep(wait_seconds)
            yield None
