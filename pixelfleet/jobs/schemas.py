from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from pixelfleet.jobs.states import TaskStatus
from pixelfleet.models import Task


class SourceOut(BaseModel):
    format: str
    width: int
    height: int
    bytes: int


class ResultOut(BaseModel):
    format: str
    content_type: str
    width: int
    height: int
    bytes: int
    expires_at: datetime | None
    available: bool


class ErrorOut(BaseModel):
    code: str
    message: str


def _error_of(task: Task) -> ErrorOut | None:
    if task.error_code is None:
        return None
    return ErrorOut(code=task.error_code, message=task.error_message or "")


class TaskLinks(BaseModel):
    self: str
    events: str
    result: str


class TaskOut(BaseModel):
    id: uuid.UUID
    status: TaskStatus
    progress: int
    stage: str | None
    cost: int
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    source: SourceOut
    pipeline: dict[str, Any]
    result: ResultOut | None
    error: ErrorOut | None
    links: TaskLinks

    @classmethod
    def from_task(cls, task: Task) -> TaskOut:
        result = None
        if task.result_format is not None:
            result = ResultOut(
                format=task.result_format,
                content_type=task.result_content_type or "application/octet-stream",
                width=task.result_width or 0,
                height=task.result_height or 0,
                bytes=task.result_bytes or 0,
                expires_at=task.expires_at,
                available=task.result_key is not None,
            )
        error = _error_of(task)
        base = f"/v1/tasks/{task.id}"
        return cls(
            id=task.id,
            status=task.status,
            progress=task.progress,
            stage=task.stage,
            cost=task.cost,
            attempts=task.attempts,
            created_at=task.created_at,
            updated_at=task.updated_at,
            started_at=task.started_at,
            finished_at=task.finished_at,
            source=SourceOut(
                format=task.source_format,
                width=task.source_width,
                height=task.source_height,
                bytes=task.source_bytes,
            ),
            pipeline=task.pipeline,
            result=result,
            error=error,
            links=TaskLinks(self=base, events=f"{base}/events", result=f"{base}/result"),
        )


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None


class ProgressEvent(BaseModel):
    """What the events stream sends on each change."""

    id: uuid.UUID
    status: TaskStatus
    progress: int
    stage: str | None
    error: ErrorOut | None

    @classmethod
    def from_task(cls, task: Task) -> ProgressEvent:
        return cls(
            id=task.id,
            status=task.status,
            progress=task.progress,
            stage=task.stage,
            error=_error_of(task),
        )
