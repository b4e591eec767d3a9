"""A finished task's outputs as downloads: which stored file answers a read (the named output;
for `format: auto`, the encoding the reader accepts first), described before it is opened."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.imaging.formats import NEGOTIATED_FORMATS, OUTPUT_FORMATS, OutputFormatName
from pixelfleet.jobs.errors import ResultExpired, ResultNotReady, TaskNotFound, VariantNotFound
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.jobs.result_urls import SignedResult
from pixelfleet.jobs.service import get_task
from pixelfleet.jobs.states import FINAL_STATES, SUCCEEDED
from pixelfleet.models import Task, TaskOutput, User
from pixelfleet.storage import Storage, StoredObjectMissing

AcceptedTypes = Mapping[str, float]
"""The media types a reader named, each with its weight (`q`): what `format: auto` picks by."""


@dataclass(frozen=True)
class StoredResult:
    """A finished task's output as a download describes it, before anything is opened. Results
    never change once stored (each attempt writes new keys), so `etag` is strong."""

    task_id: uuid.UUID
    key: str
    content_type: str
    filename: str
    size: int
    etag: str
    last_modified: datetime
    expires_at: datetime | None
    negotiated: bool = False
    """Picked by the reader's `Accept` among an output's encodings (`format: auto`)."""


@dataclass(frozen=True)
class Encoding:
    format: OutputFormatName
    content_type: str
    size: int
    key: str


async def find_result(
    session: AsyncSession,
    user: User,
    task_id: uuid.UUID,
    variant: str | None = None,
    accepted: AcceptedTypes | None = None,
) -> StoredResult:
    """A finished task's output (the first, or the named variant), in the encoding `accepted`
    names first where it has several."""
    return _result_of(await get_task(session, user, task_id), variant, accepted or {})


async def find_signed_result(
    session: AsyncSession, signed: SignedResult, accepted: AcceptedTypes | None = None
) -> StoredResult:
    """The output a signed result URL names (its signature stands in for the owner's
    credential); a task gone since is a 404 like any other."""
    task = await TaskRepository.from_session(session).get(signed.task_id)
    if task is None:
        raise TaskNotFound(f"No task {signed.task_id} exists.")
    return _result_of(task, signed.output, accepted or {})


def _encodings(output: TaskOutput, key: str) -> list[Encoding]:
    """The output's files, the most preferred first: its alternates, then its own."""
    alternates = [
        Encoding(each["format"], each["content_type"], int(each["bytes"]), each["key"])
        for each in output.alternates or []
    ]
    own = Encoding(cast(OutputFormatName, output.format), output.content_type, output.bytes, key)
    return [*alternates, own]


def preferred_format(accepted: AcceptedTypes) -> OutputFormatName | None:
    """Of the negotiated formats (AVIF, WebP), the one the reader names with the highest
    weight (AVIF on a tie); None when it names neither (a wildcard is not a name)."""
    weight, _, name = max(
        (accepted.get(OUTPUT_FORMATS[name].content_type, 0.0), -rank, name)
        for rank, name in enumerate(NEGOTIATED_FORMATS)
    )
    return name if weight > 0 else None


def negotiate(encodings: list[Encoding], accepted: AcceptedTypes) -> Encoding:
    """The encoding to send: the preferred negotiated format, else the last one, the JPEG or
    PNG every reader can show."""
    preferred = preferred_format(accepted)
    return next((each for each in encodings[:-1] if each.format == preferred), encodings[-1])


def _result_of(task: Task, variant: str | None, accepted: AcceptedTypes) -> StoredResult:
    task_id = task.id
    if task.status != SUCCEEDED:
        if task.status in FINAL_STATES:
            raise ResultNotReady(f"Task {task_id} ended as {task.status} and has no result.")
        raise ResultNotReady(f"Task {task_id} is {task.status}; its result is not ready yet.")
    output = next((o for o in task.outputs if variant in (None, o.name)), None)
    if output is None:
        names = ", ".join(o.name for o in task.outputs)
        raise VariantNotFound(f"Task {task_id} has no output {variant!r}; it has: {names}.")
    if output.key is None:
        raise _result_expired(task_id)
    encodings = _encodings(output, output.key)
    chosen = negotiate(encodings, accepted)
    suffix = "" if len(task.outputs) == 1 else f"-{output.name}"
    return StoredResult(
        task_id=task.id,
        key=chosen.key,
        content_type=chosen.content_type,
        filename=f"{task.id}{suffix}.{OUTPUT_FORMATS[chosen.format].extension}",
        size=chosen.size,
        etag='"' + hashlib.sha256(chosen.key.encode("utf-8")).hexdigest()[:32] + '"',
        last_modified=task.finished_at or task.updated_at,
        expires_at=task.expires_at,
        negotiated=len(encodings) > 1,
    )


def _result_expired(task_id: uuid.UUID) -> ResultExpired:
    return ResultExpired(f"The results of task {task_id} have expired and were deleted.")


async def open_result(
    storage: Storage, result: StoredResult, *, start: int = 0, length: int | None = None
) -> AsyncIterator[bytes]:
    """The result's bytes (from `start`, `length` of them), opened now and streamed later."""
    try:
        return await storage.open_stream(result.key, start=start, length=length)
    except StoredObjectMissing:
        raise _result_expired(result.task_id) from None
