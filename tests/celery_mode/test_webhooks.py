"""Webhooks in celery mode: the worker that finishes a task sends its event, and beat's sweep
retries a receiver that fails until it answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pixelfleet.webhooks.signing import verify_signature
from tests.api_helpers import image_bytes, sign_up
from tests.celery_mode.conftest import Processes, eventually, wait_for_status
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.celery

QUICK = '{"operations": [{"op": "thumbnail", "width": 64, "height": 64}]}'


@pytest.fixture
def celery_overrides() -> dict[str, Any]:
    return {
        "webhook_allow_private_targets": True,  # the receiver listens on loopback
        "webhook_backoff_seconds": 0.2,
        "webhook_sweep_seconds": 0.5,
        "webhook_max_attempts": 5,
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(
    client: httpx.AsyncClient, processes: Processes, receiver: Receiver
) -> None:
    processes.worker()
    processes.beat()
    receiver.answer(500, times=2)
    headers = await sign_up(client, "hooked@example.com")
    secret = (await client.get("/v1/me/webhook-secret", headers=headers)).json()["secret"]

    submitted = await client.post(
        "/v1/tasks",
        headers=headers,
        files={"file": ("photo.jpg", image_bytes(), "image/jpeg")},
        data={"pipeline": QUICK, "callback_url": f"{receiver.url}/hook"},
    )
    task_id = submitted.json()["id"]
    await wait_for_status(client, headers, task_id, {"succeeded"})
    deliveries: list[dict[str, Any]] = []

    async def delivered() -> bool:
        response = await client.get(f"/v1/tasks/{task_id}/deliveries", headers=headers)
        deliveries[:] = response.json()["items"]
        return bool(deliveries and deliveries[0]["state"] == "delivered")

    await eventually(delivered, within=60)

    assert deliveries[0]["attempts"] == 3
    assert len(receiver.requests) == 3
    assert {r.headers["pixelfleet-delivery"] for r in receiver.requests} == {deliveries[0]["id"]}
    last = receiver.requests[-1]
    assert last.headers["pixelfleet-event"] == "task.succeeded"
    assert verify_signature(secret, last.headers["pixelfleet-signature"], last.body, tolerance=300)
