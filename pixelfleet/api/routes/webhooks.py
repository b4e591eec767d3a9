from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from pixelfleet.api.deps import ContextDep, ReadSessionDep, SessionDep, SessionUser, TaskReader
from pixelfleet.api.problems import problem_responses
from pixelfleet.jobs.errors import TaskNotFound
from pixelfleet.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from pixelfleet.webhooks import service as webhooks
from pixelfleet.webhooks.schemas import DeliveryPage, WebhookSecretOut

router = APIRouter(prefix="/v1", tags=["webhooks"])


@router.get(
    "/tasks/{task_id}/deliveries",
    response_model=DeliveryPage,
    responses=problem_responses(TaskNotFound),
)
async def list_deliveries(
    task_id: uuid.UUID,
    user: TaskReader,
    session: ReadSessionDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> DeliveryPage:
    """The webhook deliveries of a task (its events sent to its `callback_url`), newest first."""
    return await webhooks.list_deliveries(session, user, task_id, cursor, limit)


@router.get("/me/webhook-secret", response_model=WebhookSecretOut)
async def get_webhook_secret(
    user: SessionUser, ctx: ContextDep, response: Response
) -> WebhookSecretOut:
    """The key that signs your webhooks. Check `PixelFleet-Signature: t=<unix>,v1=<hex>` by
    computing HMAC-SHA256 over `<t>.<raw body>` with this key, compare it with each `v1` (a
    second one is signed by the previous key for a while after a rotation), and refuse an old
    `t`."""
    response.headers["Cache-Control"] = "no-store"
    return webhooks.webhook_secret_of(ctx.settings, user)


@router.post("/me/webhook-secret/rotate", response_model=WebhookSecretOut)
async def rotate_webhook_secret(
    user: SessionUser, ctx: ContextDep, session: SessionDep, response: Response
) -> WebhookSecretOut:
    """A new key signs your webhooks from now on. The previous one still signs, as a second
    `v1` of `PixelFleet-Signature`, until `previous_secret_expires_at`
    (`PIXELFLEET_WEBHOOK_SECRET_GRACE_HOURS` after the rotation), so that your receiver can
    switch keys without missing an event."""
    response.headers["Cache-Control"] = "no-store"
    return await webhooks.rotate_webhook_secret(session, ctx.settings, user)
