"""Cancelling in celery mode: a running task's work stops at once in its worker, which goes on
with the next task; the credits follow the same rules as everywhere (a task cancelled while
running is not refunded)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api_helpers import balance_of, image_bytes, noise_png, sign_up, submit, whole_ledger
from tests.celery_mode.conftest import Processes, eventually, wait_for_status
from tests.harness.cpu import IDLE_CORES, busy_cores_over, wait_until_idle

pytestmark = pytest.mark.celery

# About eight seconds of one core's work (an AVIF encode of noise), so that a stop shows.
SLOW = {"output": {"format": "avif", "quality": 90}}
SLOW_SOURCE = noise_png((2000, 1500))
QUICK = {"operations": [{"op": "thumbnail", "width": 64, "height": 64}]}


async def _encoding(client: httpx.AsyncClient, headers: dict[str, str], task_id: str) -> None:
    async def in_its_long_encode() -> bool:
        task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
        return bool(task["stage"] == "encoding")

    await eventually(in_its_long_encode, within=60, interval=0.05)


async def test_cancelling_a_running_task_stops_its_work_and_the_worker_goes_on(
    client: httpx.AsyncClient, processes: Processes
) -> None:
    worker = processes.worker()
    headers = await sign_up(client, "cancel@example.com")
    before = await balance_of(client, headers)
    task_id = (await submit(client, headers, SLOW, SLOW_SOURCE)).json()["id"]
    await _encoding(client, headers, task_id)
    assert await asyncio.to_thread(busy_cores_over, worker.process.pid, 0.5) > IDLE_CORES

    cancelled = await client.delete(f"/v1/tasks/{task_id}", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    await asyncio.to_thread(wait_until_idle, worker.process.pid, within=2.0)

    task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert (task["status"], task["outputs"]) == ("cancelled", [])
    kinds = [entry["kind"] for entry in await whole_ledger(client, headers)]
    assert kinds.count("task_debit") == 1
    assert "task_refund" not in kinds
    assert await balance_of(client, headers) == before - task["cost"]

    quick = (await submit(client, headers, QUICK, image_bytes())).json()["id"]
    done = await wait_for_status(client, headers, quick, {"succeeded", "failed"})
    assert done["status"] == "succeeded"
