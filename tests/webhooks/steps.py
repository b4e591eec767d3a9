"""Small steps the webhook tests repeat: submit with a callback, finish, record, deliver."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from pixelfleet.context import ProcessContext
from pixelfleet.models import Task
from pixelfleet.webhooks.delivery import deliver_due
from pixelfleet.webhooks.service import record_task_event
from tests.api_helpers import image_bytes

SETTLE_SECONDS = 20.0
GRAYSCALE = '{"operations": [{"op": "grayscale"}], "output": {"format": "png"}}'


async def submit_with_callback(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    callback_url: str,
    *,
    image: bytes | None = None,
    extra_headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/v1/tasks",
        headers={**headers, **(extra_headers or {})},
        files={"file": ("photo.jpg", image or image_bytes("JPEG", (64, 48)), "image/jpeg")},
        data={"pipeline": GRAYSCALE, "callback_url": callback_url},
    )


async def record_final_event(ctx: ProcessContext, task_id: str) -> None:
    """What the task's final transition does (harmless when it already did)."""
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
    """Calls the sender as time passes until the task's only delivery is no longer pending."""
    async with asyncio.timeout(SETTLE_SECONDS):
        while True:
            await deliver_due(ctx, task_id=uuid.UUID(task_id))
            [delivery] = await deliveries_of(client, headers, task_id)
            if delivery["state"] != "pending":
                return delivery
            await asyncio.sleep(0.02)
