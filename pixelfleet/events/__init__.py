"""Task events: what workers announce as a task moves (stage, percent, final state).

The database stays the record; events are the fast path for watchers (the API's event streams
and long-polls, the operator). Each mode has its carrier: the Redis stream where there is Redis,
PostgreSQL's NOTIFY for an embedded mode on PostgreSQL, datagrams on a local socket for the
embedded mode on SQLite. Every process publishes; an API process also listens (`listening`),
handing what arrives to its in-process hub (`pixelfleet.events.hub`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
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

    def to_json(self) -> str:
        """The event as compact JSON (a datagram, a NOTIFY payload): a few hundred bytes."""
        return json.dumps(self.to_fields(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> TaskEvent:
        """The event `to_json` wrote; ValueError (or KeyError) for anything else."""
        fields = json.loads(text)
        if not isinstance(fields, dict):
            raise ValueError("a task event is a JSON object")
        return cls.from_fields(fields)

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


EventReceiver = Callable[[TaskEvent], None]


class EventChannel(Protocol):
    async def publish(self, event: TaskEvent) -> None:
        """Announces an event; never raises (an event lost is repaired from the database)."""
        ...

    def listening(self, deliver: EventReceiver) -> AbstractAsyncContextManager[None]:
        """While inside, every event published on the channel, by any process, is handed to
        `deliver` (on the event loop's thread). Once entered, nothing published after is missed
        but by the carrier's own loss (a full socket buffer, a dropped connection), which the
        watchers' slow re-read of the record repairs."""
        ...

    async def close(self) -> None:
        """Releases what `publish` holds."""
        ...


class NoEvents:
    """Where no carrier works (the embedded mode off Linux): watchers read the database."""

    async def publish(self, event: TaskEvent) -> None:
        return None

    @asynccontextmanager
    async def listening(self, deliver: EventReceiver) -> AsyncIterator[None]:
        yield

    async def close(self) -> None:
        return None
