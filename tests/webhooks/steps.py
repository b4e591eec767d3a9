"""Small steps the webhook tests repeat: submit with a callback, finish, wait for the sends the
finishing process started, call the sender as time passes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from pixelfleet.context import ProcessContext
from pixelfleet.jobs.processing import Outcome
from pixelfleet.models import Task
from pixelfleet.webhooks.delivery import deliver_due
from pixelfleet.webhooks.sender import BackgroundWebhookSender
from pixelfleet.webhooks.service import record_task_event
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import image_bytes

SETTLE_SECONDS = 20.0
GRAYSCALE = '{"operations": [{"op": "grayscale"}], "output": {"format": "png"}}'


async def submit_with_callback(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    callback_url: str,
    *,
    image: bytes | None = None,
    pipeline: str = GRAYSCALE,
    extra_headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/v1/tasks",
        headers={**headers, **(extra_headers or {})},
        files={"file": ("photo.jpg", image or image_bytes("JPEG", (64, 48)), "image/jpeg")},
        data={"pipeline": pipeline, "callback_url": callback_url},
    )


async def sends_settled(ctx: ProcessContext) -> None:
    """Waits for the webhook sends that finishing (or cancelling) a task started by itself in
    the background: after it, their first attempts are made and recorded."""
    assert isinstance(ctx.webhooks, BackgroundWebhookSender)
    await ctx.webhooks.settle()


async def finish_queued_tasks(ctx: ProcessContext) -> list[Outcome]:
    """Runs the queued tasks as an embedded worker does, then waits for the first attempts of
    the webhooks their ends sent by themselves."""
    outcomes = await drain_queue(ctx)
    await sends_settled(ctx)
    return outcomes


async def record_final_event(ctx: ProcessContext, task_id: str) -> None:
    """Records the task's event as its final transition does (which makes a second call, for
    an event already recorded, a no-op)."""
    async with ctx.sessions.begin() as session:
        task = await session.get(Task, uuid.UUID(task_id))
        assert task is not None
        await record_task_event(session, task)


async def deliveries_of(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/tasks/{task_id}/deliveries", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def deliver_until_settled(
    ctx: ProcessContext, client: httpx.AsyncClient, headers: dict[str, str], task_id: str
) -> dict[str, Any]:
    """Calls the sender as time passes (as the upkeep sweep does) until the task's only delivery
    is no longer pending."""
    async with asyncio.timeout(SETTLE_SECONDS):
        while True:
            await deliver_due(ctx, task_id=uuid.UUID(task_id))
            [delivery] = await deliveries_of(client, headers, task_id)
            if delivery["state"] != "pending":
                return delivery
            await asyncio.sleep(0.02)
