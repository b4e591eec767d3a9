"""Images on demand: `POST /v1/image-urls` signs a derivative URL, `GET /v1/images/{token}`
serves it (made on its first read), `POST /v1/me/delivery-key/rotate` ends every URL signed."""

from __future__ import annotations

import time
from functools import partial

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import StreamingResponse

from pixelfleet import row_security
from pixelfleet.accounts.errors import EmailNotVerified
from pixelfleet.api.deps import (
    VERIFIED_TASK_WRITER,
    ContextDep,
    ReadSessionDep,
    SessionDep,
    SessionUser,
    TaskWriter,
)
from pixelfleet.api.downloads import RESULT_HEADERS_DOC, result_answers, result_response
from pixelfleet.api.http_caching import RangeNotSatisfiable, accepted_types
from pixelfleet.api.problems import problem_responses
from pixelfleet.api.routes.tasks import EventHubDep
from pixelfleet.assets.errors import AssetNotFound
from pixelfleet.credits.errors import InsufficientCredits
from pixelfleet.derivatives import service as derivatives
from pixelfleet.derivatives.errors import (
    DerivationFailed,
    ImageNotReady,
    ImageUrlInvalid,
    ImageUrlStale,
)
from pixelfleet.derivatives.schemas import DeliveryKeyRotated, ImageUrlIn, ImageUrlOut
from pixelfleet.errors import InvalidInput, QuotaExceededForNow
from pixelfleet.jobs.errors import ResultExpired, TaskNotFound
from pixelfleet.jobs.waiting import task_when_final
from pixelfleet.observability import log_context
from pixelfleet.observability.metrics import IMAGE_REQUESTS
from pixelfleet.sources.errors import SourceExpired

router = APIRouter(prefix="/v1", tags=["images"])

IMMUTABLE = "public, max-age=31536000, immutable"
"""A derivative never changes under its URL: any cache may keep it for a year."""


@router.post(
    "/image-urls",
    status_code=status.HTTP_201_CREATED,
    response_model=ImageUrlOut,
    dependencies=[VERIFIED_TASK_WRITER],
    responses=problem_responses(
        TaskNotFound, AssetNotFound, SourceExpired, InvalidInput, EmailNotVerified
    ),
)
async def create_image_url(
    body: ImageUrlIn, user: TaskWriter, ctx: ContextDep, session: ReadSessionDep
) -> ImageUrlOut:
    """A derivative URL: one of your stored images (an asset, or a task's source) through one
    of your presets, for `<img src>` with no credential. Its first read makes the image
    (charged as the preset's task, once per format a reader is sent); every later read serves
    it from storage. It works until the preset changes or you rotate your delivery key."""
    url = await derivatives.create_image_url(
        session, ctx.delivery_keys, user, body, ctx.settings.image_limits
    )
    return ImageUrlOut(url=url)


@router.post("/me/delivery-key/rotate", response_model=DeliveryKeyRotated)
async def rotate_delivery_key(user: SessionUser, session: SessionDep) -> DeliveryKeyRotated:
    """A new key signs your derivative URLs: every one signed before answers 403
    `image-url-invalid` from now on. Images already made stay, and are not charged again."""
    return DeliveryKeyRotated(rotated_at=await derivatives.rotate_delivery_key(session, user))


@router.get(
    "/images/{token}",
    response_class=StreamingResponse,
    responses=result_answers(
        ImageUrlInvalid,
        ImageUrlStale,
        InsufficientCredits,
        QuotaExceededForNow,
        TaskNotFound,
        AssetNotFound,
        SourceExpired,
        DerivationFailed,
        ResultExpired,
        RangeNotSatisfiable,
        ImageNotReady,
    ),
    description="The image a derivative URL names, with no credential. The first read makes "
    "it within `PIXELFLEET_DERIVE_TIMEOUT_SECONDS` (else a 503 with `Retry-After` while it is "
    "finished) and charges the preset's price, once per format; without credits that read is "
    "a 402, never a later one. Every later read is served from storage with "
    "`Cache-Control: public, max-age=31536000, immutable`. A preset of format `auto` is made "
    "and sent in the format the reader's `Accept` names (`Vary: Accept`). " + RESULT_HEADERS_DOC,
)
@router.head("/images/{token}", response_class=StreamingResponse, include_in_schema=False)
async def derived_image(
    token: str, request: Request, ctx: ContextDep, hub: EventHubDep
) -> Response:
    user, claims = await derivatives.verified(ctx, token)
    log_context.bind(user_id=user.id)
    row_security.act_as(user.id)  # the URL's signature is its account's credential
    delivered = await derivatives.deliver(
        ctx,
        partial(task_when_final, ctx, hub, user.id),
        user,
        claims,
        accepted_types(request.headers.get("accept")),
        now=time.monotonic,
    )
    IMAGE_REQUESTS.labels("hit" if delivered.cached else "miss").inc()
    return await result_response(
        request, ctx.storage, delivered.result, IMMUTABLE, route="image"
    )
