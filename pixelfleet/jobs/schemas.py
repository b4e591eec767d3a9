from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Union, cast

from pydantic import BaseModel, Field

from pixelfleet.imaging.formats import AUTO
from pixelfleet.imaging.plan import Plan
from pixelfleet.imaging.spec import Pipeline
from pixelfleet.jobs.states import TaskStatus
from pixelfleet.sources.schemas import SourceKind

if TYPE_CHECKING:
    from pixelfleet.jobs.repository import TaskProgress, TaskView
    from pixelfleet.models import Task


# What the answers are made from: a `Task` entity (a writer's), or the plain values a reader
# reads in one statement (`TaskView`, `TaskProgress`).
TaskRecord = Union["Task", "TaskView"]
ProgressRecord = Union["Task", "TaskView", "TaskProgress"]


class SourceOut(BaseModel):
    format: str
    width: int
    height: int
    bytes: int

    @classmethod
    def of(cls, task: TaskRecord) -> SourceOut:
        return cls(
            format=task.source_format,
            width=task.source_width,
            height=task.source_height,
            bytes=task.source_bytes,
        )


class TaskSourceOut(SourceOut):
    """A task's source: what its header said, and how it came."""

    kind: SourceKind = Field(
        description="`file` (uploaded with the task), or the kind of source the submission "
        "named: `url`, `upload`, `task` or `asset`."
    )
    ref: str | None = Field(
        description="What the submission named: the URL, or the id of the upload, task or "
        "asset (null for a `file`)."
    )

    @classmethod
    def of(cls, task: TaskRecord) -> TaskSourceOut:
        return cls(
            **SourceOut.of(task).model_dump(),
            kind=cast(SourceKind, task.source_kind),
            ref=task.source_ref,
        )


class PredictedOutput(BaseModel):
    name: str
    format: str
    width: int
    height: int


class QuoteOut(BaseModel):
    """The price and the outputs a task would have, foreseen from its image's header."""

    cost: int = Field(description="Credits the task would be charged: exactly this.")
    outputs: list[PredictedOutput]
    source: SourceOut

    @classmethod
    def of(cls, cost: int, plan: Plan) -> QuoteOut:
        source = plan.source
        return cls(
            cost=cost,
            outputs=[
                PredictedOutput(
                    name=output.name, format=output.format, width=output.width, height=output.height
                )
                for output in plan.outputs
            ],
            source=SourceOut(
                format=source.format, width=source.width, height=source.height, bytes=source.bytes
            ),
        )


class EncodingOut(BaseModel):
    """One stored file of an output."""

    format: str
    content_type: str
    bytes: int


class ResultOut(BaseModel):
    """One stored output: the task's only one, or one of its variants."""

    name: str
    format: str = Field(
        description="Its format; `auto`: stored as AVIF, WebP and JPEG (PNG with alpha), and "
        "served as the one the reader's `Accept` header names first (AVIF or WebP only when "
        "named; else the JPEG or PNG), with `Vary: Accept`."
    )
    content_type: str = Field(description="Its type (for `auto`, the JPEG's or PNG's).")
    width: int
    height: int
    bytes: int = Field(description="Its size (for `auto`, the JPEG's or PNG's).")
    encodings: list[EncodingOut] = Field(
        description="Each file it is stored as: one, or for `auto` the AVIF, WebP and JPEG or "
        "PNG, in the order delivery prefers them."
    )
    available: bool
    placeholder: str | None = Field(
        default=None,
        description="When its output asked for one (`placeholder`): the BlurHash string, or "
        "the ThumbHash bytes in base64, to show while the image loads.",
        examples=["LPM8B54n?b~qD%DiRjxuxaM{DiIU"],
    )
    dominant_color: str | None = Field(
        default=None,
        description="With a placeholder: the image's most common colour, `#rrggbb`.",
        examples=["#ccdbe2"],
    )
    url: str = Field(
        description="The image, by a signed URL that needs no credential (`<img src>`), until "
        "it expires (`PIXELFLEET_RESULT_URL_TTL_SECONDS`; read the task again for a fresh one)."
    )


class ErrorOut(BaseModel):
    code: str
    message: str


def error_of(task: ProgressRecord) -> ErrorOut | None:
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
    source: TaskSourceOut
    pipeline: Pipeline
    result: ResultOut | None = Field(
        description="The first output (the only one unless the pipeline has variants)."
    )
    outputs: list[ResultOut] = Field(description="Every output, in the pipeline's order.")
    expires_at: datetime | None = Field(description="When the stored files will be deleted.")
    error: ErrorOut | None
    callback_url: str | None = Field(
        default=None, description="Where the task's final event is POSTed (a signed webhook)."
    )
    links: TaskLinks

    @classmethod
    def from_task(cls, task: TaskRecord) -> TaskOut:
        base = f"/v1/tasks/{task.id}"
        outputs = [
            ResultOut(
                name=output.name,
                format=AUTO if output.alternates else output.format,
                content_type=output.content_type,
                width=output.width,
                height=output.height,
                bytes=output.bytes,
                encodings=[
                    *(EncodingOut.model_validate(each) for each in output.alternates or []),
                    EncodingOut(
                        format=output.format,
                        content_type=output.content_type,
                        bytes=output.bytes,
                    ),
                ],
                available=output.key is not None,
                placeholder=output.placeholder,
                dominant_color=output.dominant_color,
                url=f"{base}/result?variant={output.name}",
            )
            for output in task.outputs
        ]
        error = error_of(task)
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
            source=TaskSourceOut.of(task),
            pipeline=task.pipeline,
            result=outputs[0] if outputs else None,
            outputs=outputs,
            expires_at=task.expires_at,
            error=error,
            callback_url=task.callback_url,
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
    def from_task(cls, task: ProgressRecord) -> ProgressEvent:
        return cls(
            id=task.id,
            status=task.status,
            progress=task.progress,
            stage=task.stage,
            error=error_of(task),
        )
