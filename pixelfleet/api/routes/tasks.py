from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from pixelfleet.api.deps import ContextDep, CurrentUser, ReadSessionDep, SessionDep
from pixelfleet.api.uploads import read_upload
from pixelfleet.errors import NotFound
from pixelfleet.jobs import service as jobs
from pixelfleet.jobs.schemas import TaskOut, TaskPage
from pixelfleet.jobs.states import FINAL_STATES, TaskStatus
from pixelfleet.models import User
from pixelfleet.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

EVENT_POLL_SECONDS = 0.25
EVENT_KEEPALIVE_SECONDS = 15.0


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=TaskOut)
async def submit_task(
    response: Response,
    user: CurrentUser,
    ctx: ContextDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="The image to process.")],
    pipeline: Annotated[
        str,
        Form(
            description='JSON: {"operations": [{"op": "resize", "width": 800}], '
            '"output": {"format": "webp", "quality": 80}}'
        ),
    ] = "{}",
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="Repeat-safe submission key.")
    ] = None,
) -> TaskOut:
    """Queue an image task. The cost is debited now and refunded if the task fails."""
    upload = await read_upload(file, ctx.settings.max_upload_bytes)
    submission = await jobs.submit_task(
        session,
        ctx.storage,
        user,
        upload,
        pipeline,
        ctx.settings.image_limits,
        idempotency_key=idempotency_key,
    )
    response.headers["Location"] = f"/v1/tasks/{submission.task.id}"
    if not submission.created:
        response.headers["Idempotent-Replayed"] = "true"
    return TaskOut.from_task(submission.task)


@router.get("", response_model=TaskPage)
async def list_tasks(
    user: CurrentUser,
    session: ReadSessionDep,
    status_filter: Annotated[TaskStatus | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> TaskPage:
    """The caller's tasks, newest first."""
    return await jobs.list_tasks(session, user, status=status_filter, cursor=cursor, limit=limit)


@router.get("/{task_id}", response_model=TaskOut)
async def get_task(task_id: uuid.UUID, user: CurrentUser, session: ReadSessionDep) -> TaskOut:
    return TaskOut.from_task(await jobs.get_task(session, user, task_id))


@router.delete("/{task_id}", response_model=TaskOut)
async def cancel_task(
    task_id: uuid.UUID, user: CurrentUser, ctx: ContextDep, session: SessionDep
) -> TaskOut:
    """Cancel a task. A task that had not started is refunded."""
    return TaskOut.from_task(await jobs.cancel_task(session, user, task_id, ctx.retention))


@router.get(
    "/{task_id}/result",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/*": {}}, "description": "The processed image."}},
)
async def download_result(
    task_id: uuid.UUID,
    user: CurrentUser,
    ctx: ContextDep,
    session: ReadSessionDep,
    variant: Annotated[
        str | None,
        Query(max_length=32, description="The output's name (default: the first output)."),
    ] = None,
) -> StreamingResponse:
    """The processed image, with its `Content-Type`."""
    download = await jobs.open_result(session, ctx.storage, user, task_id, variant)
    headers = {
        "Content-Disposition": f'inline; filename="{download.filename}"',
        "Content-Length": str(download.size),
    }
    return StreamingResponse(download.chunks, media_type=download.content_type, headers=headers)


def _sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


async def _task_events(
    request: Request, ctx: ContextDep, user: User, task_id: uuid.UUID
) -> AsyncIterator[str]:
    last: str | None = None
    quiet = 0.0
    while True:
        try:
            async with ctx.read_sessions() as session:
                event = await jobs.progress_of(session, user, task_id)
        except NotFound:
            return  # deleted with its account while we watched
        payload = event.model_dump_json()
        if payload != last:
            last, quiet = payload, 0.0
            final = event.status in FINAL_STATES
            yield _sse("done" if final else "progress", payload)
            if final:
                return
        elif quiet >= EVENT_KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(EVENT_POLL_SECONDS)
        quiet += EVENT_POLL_SECONDS


@router.get(
    "/{task_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def task_events(
    task_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    ctx: ContextDep,
    session: ReadSessionDep,
) -> StreamingResponse:
    """Server-sent events: `progress` on each change, then one `done` with the final state."""
    await jobs.get_task(session, user, task_id)  # 404 before the stream starts
    return StreamingResponse(
        _task_events(request, ctx, user, task_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
