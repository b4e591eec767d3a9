from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import (
    APIRouter,
    Depends,
    Header,
    Query,
    Request,
    Response,
    status,
)
from fastapi.responses import StreamingResponse

from pixelfleet.accounts.errors import EmailNotVerified
from pixelfleet.api.deps import (
    VERIFIED_TASK_WRITER,
    ContextDep,
    LastingCredential,
    OwnTaskReader,
    ReadSessionDep,
    RequestSessionsDep,
    SessionDep,
    TaskReader,
    TaskWatcher,
    TaskWriter,
    TaskWritingCaller,
)
from pixelfleet.api.downloads import (
    RESULT_HEADERS_DOC,
    private_until,
    result_answers,
    result_response,
)
from pixelfleet.api.http_caching import RangeNotSatisfiable, accepted_types
from pixelfleet.api.http_metrics import ROUTE_LABEL_KEY
from pixelfleet.api.problems import problem_of, problem_responses
from pixelfleet.api.rate_limits import RATE_LIMITED, limit_task_submission
from pixelfleet.api.submissions import SUBMISSION_BODY, SUBMISSION_PROBLEMS, read_submission
from pixelfleet.api.uploads import StagingRoute
from pixelfleet.context import ProcessContext
from pixelfleet.credits.errors import InsufficientCredits
from pixelfleet.db import utcnow
from pixelfleet.errors import NotFound, QuotaExceededForNow
from pixelfleet.events.hub import EventHub
from pixelfleet.jobs import results
from pixelfleet.jobs import service as jobs
from pixelfleet.jobs.errors import (
    IdempotencyKeyReused,
    ResultExpired,
    ResultNotReady,
    TaskAlreadyFinished,
    TaskNotFound,
    VariantNotFound,
)
from pixelfleet.jobs.schemas import ProgressEvent, TaskOut, TaskPage
from pixelfleet.jobs.states import FINAL_STATES, TaskStatus
from pixelfleet.jobs.waiting import task_after_change
from pixelfleet.observability import log_context
from pixelfleet.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

log = logging.getLogger(__name__)

# Its requests stage an upload in storage as it arrives (api/uploads.py).
router = APIRouter(prefix="/v1/tasks", tags=["tasks"], route_class=StagingRoute)

# Changes arrive as events through the process's hub at once; after this long without one, a
# stream or a long-poll reads the record anyway (an event lost on the way only delays).
EVENT_WAIT_SECONDS = 1.0
EVENT_KEEPALIVE_SECONDS = 15.0
# How often, at most, a stream asks again whether its credential works. With the wait above, a
# stream ends within about 2 s of its credential (revoked key, disabled account, ended logins,
# expiry), whether or not its task moves.
CREDENTIAL_CHECK_SECONDS = 1.0
MAX_TASK_WAIT_SECONDS = 30.0
LONG_POLL_ROUTE = "/v1/tasks/{task_id}?wait"


async def get_event_hub(request: Request) -> EventHub:
    hub: EventHub = request.app.state.event_hub
    return hub


EventHubDep = Annotated[EventHub, Depends(get_event_hub)]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskOut,
    dependencies=[VERIFIED_TASK_WRITER, Depends(limit_task_submission)],
    openapi_extra=SUBMISSION_BODY,
    responses={
        **RATE_LIMITED,
        **problem_responses(
            *SUBMISSION_PROBLEMS,
            InsufficientCredits,
            IdempotencyKeyReused,
            QuotaExceededForNow,
            EmailNotVerified,
        ),
    },
)
async def submit_task(
    request: Request,
    response: Response,
    caller: TaskWritingCaller,
    ctx: ContextDep,
    sessions: RequestSessionsDep,
    session: SessionDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="Repeat-safe submission key.")
    ] = None,
) -> TaskOut:
    """Queue an image task. The cost is debited now and refunded if the task fails.

    The image is uploaded in a `multipart/form-data` body (`file`, `pipeline`, `callback_url`),
    or named in an `application/json` body: `{"source": {"url": ...}}` (fetched now, from a
    public host), `{"source": {"task": ID}}` (an earlier task's source) or
    `{"source": {"asset": ID}}`, with `pipeline` as an object."""
    # Read after the caller is known, and before the first write (no lock is held meanwhile).
    body = await read_submission(request, ctx, sessions, caller.user)
    try:
        submission = await jobs.submit_task(
            session,
            ctx.storage,
            caller.user,
            body.upload,
            body.pipeline,
            ctx.settings.image_limits,
            ctx.settings.account_quotas,
            idempotency_key=idempotency_key,
            callback_url=body.callback_url,
            allow_private_callback=ctx.settings.webhook_allow_private_targets,
            origin=body.origin,
            api_key_id=caller.api_key_id,
            dispatch_ahead=ctx.settings.dispatch_ahead,
        )
    finally:
        body.upload.discard()  # nothing once the task has stored it
    # A new task is dispatched once the request's transaction commits (before this answer).
    log_context.bind(task_id=submission.task.id)
    response.headers["Location"] = f"/v1/tasks/{submission.task.id}"
    if not submission.created:
        response.headers["Idempotent-Replayed"] = "true"
    return ctx.result_urls.task(TaskOut.from_task(submission.task), utcnow())


@router.get("", response_model=TaskPage)
async def list_tasks(
    user: TaskReader,
    ctx: ContextDep,
    session: ReadSessionDep,
    status_filter: Annotated[TaskStatus | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> TaskPage:
    """The caller's tasks, newest first."""
    page = await jobs.list_tasks(session, user, status=status_filter, cursor=cursor, limit=limit)
    return ctx.result_urls.page(page, utcnow())


@router.get("/{task_id}", response_model=TaskOut, responses=problem_responses(TaskNotFound))
async def get_task(
    task_id: uuid.UUID,
    request: Request,
    reader: OwnTaskReader,
    session: ReadSessionDep,
    sessions: RequestSessionsDep,
    ctx: ContextDep,
    hub: EventHubDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_TASK_WAIT_SECONDS,
            description="Seconds (at most 30) to wait for the task to change before answering "
            "(a long-poll): the answer comes as soon as the task changes or is final, else "
            "after the wait, with the task as it then stands. 0: at once.",
        ),
    ] = 0,
) -> TaskOut:
    """The task as it stands; with `wait`, as it stands after its next change (or the wait)."""
    log_context.bind(task_id=task_id)
    urls = ctx.result_urls
    if wait == 0:
        task = await reader.read(
            jobs.read_task(session, reader.user_id, task_id, token=reader.token)
        )
        return urls.task(task, utcnow())
    request.scope[ROUTE_LABEL_KEY] = LONG_POLL_ROUTE  # timed apart from plain reads
    await reader.confirm()
    await sessions.end_reads()  # the caller's read: no connection is held while it waits
    task = await task_after_change(ctx, hub, reader.user_id, task_id, wait)
    return urls.task(task, utcnow())


@router.delete(
    "/{task_id}",
    response_model=TaskOut,
    responses=problem_responses(TaskNotFound, TaskAlreadyFinished),
)
async def cancel_task(
    task_id: uuid.UUID, user: TaskWriter, ctx: ContextDep, session: SessionDep
) -> TaskOut:
    """Cancel a task. A task that had not started is refunded."""
    log_context.bind(task_id=task_id)
    # Its event and webhook go out once the request's transaction commits.
    task = await jobs.cancel_task(session, user, task_id, ctx.retention)
    return ctx.result_urls.task(TaskOut.from_task(task), utcnow())


_RESULT_ANSWERS = result_answers(
    TaskNotFound, VariantNotFound, ResultNotReady, ResultExpired, RangeNotSatisfiable
)


@router.get(
    "/{task_id}/result",
    response_class=StreamingResponse,
    responses=_RESULT_ANSWERS,
    description="The processed image, with its `Content-Type`. " + RESULT_HEADERS_DOC,
)
# HEAD: the GET's headers with no body (left out of the schema, as HTTP defines it by the GET).
@router.head("/{task_id}/result", response_class=StreamingResponse, include_in_schema=False)
async def download_result(
    request: Request,
    task_id: uuid.UUID,
    user: TaskReader,
    ctx: ContextDep,
    session: ReadSessionDep,
    variant: Annotated[
        str | None,
        Query(max_length=32, description="The output's name (default: the first output)."),
    ] = None,
) -> Response:
    log_context.bind(task_id=task_id)
    accepted = accepted_types(request.headers.get("accept"))
    result = await results.find_result(session, user, task_id, variant, accepted)
    # Only the caller may keep it, for as long as the result is kept.
    cache_control = private_until(result.expires_at)
    return await result_response(request, ctx.storage, result, cache_control, route="result")


async def _task_events(
    request: Request,
    ctx: ProcessContext,
    hub: EventHub,
    watcher: LastingCredential,
    task_id: uuid.UUID,
) -> AsyncIterator[str]:
    """The database says where the task stands (first, after each quiet wait, at the end);
    the process's event hub brings each change as it happens. The credential is checked again
    at most every CREDENTIAL_CHECK_SECONDS: once it stops working, one `error` event says why
    (the problem document a request would get) and the stream ends."""
    user = watcher.caller.user

    async def stored() -> ProgressEvent | None:
        try:
            async with ctx.read_sessions() as session:
                return await jobs.progress_of(session, user, task_id)
        except NotFound:
            return None  # deleted with its account while we watched

    def sse(event: ProgressEvent) -> str:
        name = "done" if event.status in FINAL_STATES else "progress"
        return f"event: {name}\ndata: {event.model_dump_json()}\n\n"

    checked_at = time.monotonic()

    async def refusal() -> str | None:
        nonlocal checked_at
        if time.monotonic() - checked_at < CREDENTIAL_CHECK_SECONDS:
            return None
        checked_at = time.monotonic()
        refused = await watcher.refusal()
        if refused is None:
            return None
        problem = json.dumps(problem_of(refused, instance=request.url.path))
        return f"event: error\ndata: {problem}\n\n"

    with hub.watch(task_id) as watch:  # before the first read: no change after it is missed
        current = await stored()
        if current is None:
            return
        yield sse(current)
        sent_at = time.monotonic()
        while current.status not in FINAL_STATES:
            change = await watch.next(EVENT_WAIT_SECONDS)
            ended = await refusal()
            if ended is not None:
                yield ended
                return
            if change is None or change.status in FINAL_STATES:
                latest = await stored()  # the final word (and its error) comes from the record
            else:
                latest = ProgressEvent(
                    id=task_id,
                    status=change.status,
                    progress=change.progress,
                    stage=change.stage,
                    error=None,
                )
            if latest is None:
                return
            if latest != current:
                current, sent_at = latest, time.monotonic()
                yield sse(latest)
                continue
            if time.monotonic() - sent_at >= EVENT_KEEPALIVE_SECONDS:
                sent_at = time.monotonic()
                yield ": keep-alive\n\n"
            if await request.is_disconnected():
                return


@router.get(
    "/{task_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "A `text/event-stream` (server-sent events, as browsers' "
            "`EventSource` reads them). Each event is an `event:` line naming it, a `data:` "
            "line of JSON and a blank line: `progress` events (data: a `ProgressEvent`) on "
            "each change, then one `done` (a `ProgressEvent` with the final status), after "
            "which the server ends the stream; or, once the credential stops working, one "
            "`error` event whose data is a problem document. Lines starting with `:` are "
            "keep-alives, after 15 s of quiet.",
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "example": 'event: progress\ndata: {"id": "3f0c5b1e-8d2a-4c55-9a57-'
                    '0d6c1f2e4b7a", "status": "running", "progress": 10, "stage": "starting", '
                    '"error": null}\n\nevent: done\ndata: {"id": "3f0c5b1e-8d2a-4c55-9a57-'
                    '0d6c1f2e4b7a", "status": "succeeded", "progress": 100, "stage": "done", '
                    '"error": null}\n\n',
                }
            },
        },
        **problem_responses(TaskNotFound),
    },
)
async def task_events(
    task_id: uuid.UUID,
    request: Request,
    watcher: TaskWatcher,
    ctx: ContextDep,
    hub: EventHubDep,
    session: ReadSessionDep,
) -> StreamingResponse:
    """Server-sent events: `progress` on each change, then one `done` with the final state.
    A stream whose credential stops working (a revoked API key, a disabled account, ended
    logins, an expired token) ends within about 2 s with one `error` event carrying the
    problem document (`invalid-token`, `account-disabled`)."""
    log_context.bind(task_id=task_id)
    await jobs.get_task(session, watcher.caller.user, task_id)  # 404 before the stream starts
    return StreamingResponse(
        _task_events(request, ctx, hub, watcher, task_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
