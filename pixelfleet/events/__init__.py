"""Task events: what workers announce as a task moves (stage, percent, final state).

The database stays the record; events are the fast path for watchers (the API's event stream,
the operator). The embedded mode has no broker and publishes nowhere: its watchers read the
database."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pixelfleet.db import utcnow

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


class EventPublisher(Protocol):
    async def publish(self, event: TaskEvent) -> None:
        """Announces an event; never raises (an event lost is repaired from the database)."""
        ...


class NoEvents:
    """The embedded mode's publisher: watchers read the database."""

    async def publish(self, event: TaskEvent) -> None:
        return None
