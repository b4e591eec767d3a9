"""`/v1/results/{token}`: a result by its signed URL, with no credential (for `<img src>`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from pixelfleet.api.deps import ContextDep, ReadSessionDep
from pixelfleet.api.downloads import (
    RESULT_HEADERS_DOC,
    presigned_redirect,
    private_until,
    result_answers,
    result_response,
)
from pixelfleet.api.http_caching import RangeNotSatisfiable, accepted_types
from pixelfleet.jobs import results
from pixelfleet.jobs.errors import ResultExpired, ResultNotReady, TaskNotFound, VariantNotFound
from pixelfleet.jobs.result_urls import ResultUrlExpired, ResultUrlInvalid
from pixelfleet.observability import log_context
from pixelfleet.observability.metrics import DELIVERY_REDIRECTS

router = APIRouter(prefix="/v1/results", tags=["tasks"])


@router.get(
    "/{token}",
    response_class=StreamingResponse,
    responses={
        **result_answers(
            ResultUrlInvalid,
            ResultUrlExpired,
            TaskNotFound,
            VariantNotFound,
            ResultNotReady,
            ResultExpired,
            RangeNotSatisfiable,
        ),
        302: {
            "description": "With S3 storage: the image is at the presigned URL in `Location`.",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
    },
    description="A result by the signed URL a task gives for each output (`outputs[].url`): "
    "no credential, so it can stand in `<img src>`, until the URL expires "
    "(`PIXELFLEET_RESULT_URL_TTL_SECONDS`). With S3 storage it answers a 302 to a presigned "
    "GET of the object, good as long (`PIXELFLEET_RESULT_REDIRECT`, on by default), so the "
    "bytes come from the bucket. " + RESULT_HEADERS_DOC,
)
@router.head("/{token}", response_class=StreamingResponse, include_in_schema=False)
async def signed_result(
    token: str, request: Request, ctx: ContextDep, session: ReadSessionDep
) -> Response:
    signed = ctx.result_urls.verify(token)
    log_context.bind(task_id=signed.task_id)
    accepted = accepted_types(request.headers.get("accept"))
    result = await results.find_signed_result(session, signed, accepted)
    if ctx.settings.result_redirect:
        redirect = presigned_redirect(ctx.storage, result, signed.expires_at)
        if redirect is not None:
            DELIVERY_REDIRECTS.inc()
            return redirect
    # Whoever holds the URL may keep the image while the URL works, in their own cache.
    cache_control = private_until(signed.expires_at)
    return await result_response(
        request, ctx.storage, result, cache_control, route="signed_result"
    )
