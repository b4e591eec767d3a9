"""`POST /v1/quotes`: what a task would cost and make, charging nothing."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from pixelfleet.api.deps import ContextDep, RequestSessionsDep, TaskWriter
from pixelfleet.api.problems import problem_responses
from pixelfleet.api.rate_limits import RATE_LIMITED, limit_task_submission
from pixelfleet.api.submissions import SUBMISSION_BODY, SUBMISSION_PROBLEMS, read_submission
from pixelfleet.api.uploads import StagingRoute
from pixelfleet.jobs import service as jobs
from pixelfleet.jobs.schemas import QuoteOut

router = APIRouter(prefix="/v1/quotes", tags=["tasks"], route_class=StagingRoute)


@router.post(
    "",
    response_model=QuoteOut,
    # A quote may fetch a URL and reads an upload: it counts as a submission.
    dependencies=[Depends(limit_task_submission)],
    openapi_extra=SUBMISSION_BODY,
    responses={**RATE_LIMITED, **problem_responses(*SUBMISSION_PROBLEMS)},
)
async def quote_task(
    request: Request, user: TaskWriter, ctx: ContextDep, sessions: RequestSessionsDep
) -> QuoteOut:
    """The exact price and the predicted outputs of the task this body would submit (any body
    `POST /v1/tasks` takes), from the image's header alone. Nothing is stored or charged; the
    task, once submitted, is charged exactly this `cost`."""
    body = await read_submission(request, ctx, sessions, user)
    try:
        quote = await jobs.quote_task(
            sessions.reads(), user, body.upload, body.pipeline, ctx.settings.image_limits
        )
    finally:
        body.upload.discard()
    return QuoteOut.of(quote.cost, quote.plan)
