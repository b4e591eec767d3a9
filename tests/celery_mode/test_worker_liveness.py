"""A Celery worker's liveness probe (`/healthz` on its metrics port) says whether its consumer
loop still turns: a worker whose loop is held (here, by a task run inline by a solo pool) fails
it although its process, and the server answering the probe, are up; once the loop turns
again, so does the probe. A worker busy in its pool processes, as the chart runs them, stays
alive however long its tasks take."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest

from pixelfleet.settings import Settings
from tests.api_helpers import noise_png, sign_up, submit
from tests.celery_mode.conftest import Processes, eventually, wait_for_status

pytestmark = [pytest.mark.celery, pytest.mark.heavy]

SLOW = {"operations": [{"op": "rotate", "angle": 33}], "output": {"format": "avif"}}


async def probe(settings: Settings) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.get(f"http://127.0.0.1:{settings.worker_metrics_port}/healthz")


@pytest.mark.parametrize("celery_overrides", [{"worker_liveness_seconds": 1.0}])
async def test_a_worker_whose_consumer_loop_is_held_fails_its_probe_until_it_turns_again(
    client: httpx.AsyncClient, processes: Processes, settings: Settings
) -> None:
    processes.worker(pool="solo")
    answers: list[Any] = []

    async def answering(status: int) -> bool:
        try:
            response = await probe(settings)
        except httpx.TransportError:
            return False
        answers.append((response.status_code, response.text))
        return response.status_code == status

    async def alive() -> bool:
        return await answering(200)

    async def held() -> bool:
        return await answering(503)

    await eventually(alive, within=30)
    assert answers[-1] == (200, "ok\n")

    headers = await sign_up(client, "held@example.com")
    task_id = (await submit(client, headers, SLOW, noise_png((2400, 2400)))).json()["id"]
    await eventually(held, within=30)
    assert "consumer loop has not turned" in answers[-1][1]

    await wait_for_status(client, headers, task_id, {"succeeded", "failed"}, within=120)
    await eventually(alive, within=30)


@pytest.mark.parametrize("celery_overrides", [{"worker_liveness_seconds": 1.0}])
async def test_a_worker_busy_in_its_pool_stays_alive(
    client: httpx.AsyncClient, processes: Processes, settings: Settings
) -> None:
    processes.worker()  # prefork: tasks run in pool processes
    headers = await sign_up(client, "busy@example.com")
    task_id = (await submit(client, headers, SLOW, noise_png((2400, 2400)))).json()["id"]
    statuses = []
    while (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()["status"] in (
        "queued",
        "running",
    ):
        with contextlib.suppress(httpx.TransportError):  # still starting
            statuses.append((await probe(settings)).status_code)
        await asyncio.sleep(0.2)  # a probe's period, in small

    assert statuses
    assert set(statuses) == {200}
