"""Idle embedded workers sleep until work comes: a committed or requeued task wakes one at
once. Every worker here looks at the queue by itself only every hour
(PIXELFLEET_WORKER_POLL_SECONDS), so only a wake-up can start a task in time."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pixelfleet.bootstrap import create_doorbell_listener
from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.jobs import maintenance
from pixelfleet.jobs.processing import release
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.launchers import DoorbellListener
from tests.api_helpers import image_bytes, sign_up, submit
from tests.harness.cpu import wait_until_idle
from tests.harness.embedded import RunningPlatform, pixelfleet_up
from tests.live_api import sign_in, wait_final
from tests.live_api import submit as submit_live
from tests.records import claim_an_hour_ago, stored_task

# On SQLite (datagram sockets) and on PostgreSQL (LISTEN/NOTIFY).
pytestmark = pytest.mark.both_backends

HOURLY = {"PIXELFLEET_WORKER_POLL_SECONDS": "3600"}
GRAYSCALE = {"operations": [{"op": "grayscale"}]}
RING_WITHIN = 10.0


def asleep(platform: RunningPlatform) -> None:
    """Waits until the worker has started, made its first look at the queue, and sleeps."""
    deadline = time.monotonic() + 60
    while "worker embedded@" not in platform.log():
        assert time.monotonic() < deadline, platform.log()
        time.sleep(0.1)
    wait_until_idle(platform.process.pid, within=60)


def test_a_submitted_task_wakes_a_sleeping_worker(tmp_path: Path, database_url: str) -> None:
    env = {**HOURLY, "PIXELFLEET_DATABASE_URL": database_url}
    with (
        pixelfleet_up(tmp_path / "data", env=env, workers=1) as platform,
        httpx.Client(base_url=platform.base_url, timeout=30) as http,
    ):
        headers = sign_in(http, "eager@example.com")
        asleep(platform)
        first = submit_live(http, headers, GRAYSCALE, image_bytes())
        assert wait_final(http, headers, first["id"])["status"] == "succeeded"
        # Back asleep after its work, it wakes again for the next task.
        wait_until_idle(platform.process.pid, within=60)
        second = submit_live(http, headers, GRAYSCALE, image_bytes())
        assert wait_final(http, headers, second["id"])["status"] == "succeeded"


@pytest.fixture
async def doorbell(ctx: ProcessContext) -> AsyncIterator[DoorbellListener]:
    """What the first embedded worker of `ctx`'s queue would hear."""
    listener = create_doorbell_listener(ctx.settings, 0)
    await listener.start()
    try:
        await asyncio.wait_for(listener.listening.wait(), RING_WITHIN)
        yield listener
    finally:
        await listener.close()


async def test_a_submission_rings_the_workers(
    client: httpx.AsyncClient, ctx: ProcessContext, doorbell: DoorbellListener
) -> None:
    headers = await sign_up(client, "ringer@example.com")
    assert (await submit(client, headers, GRAYSCALE)).status_code == 202
    await asyncio.wait_for(doorbell.rung.wait(), RING_WITHIN)


async def test_a_task_taken_from_a_stopped_worker_rings_the_workers(
    client: httpx.AsyncClient, ctx: ProcessContext, doorbell: DoorbellListener
) -> None:
    headers = await sign_up(client, "orphan@example.com")
    task_id = (await submit(client, headers, GRAYSCALE)).json()["id"]
    await claim_an_hour_ago(ctx, task_id, "worker-that-stopped")
    doorbell.rung.clear()

    assert await maintenance.recover_stale_tasks(ctx) == 1
    await asyncio.wait_for(doorbell.rung.wait(), RING_WITHIN)
    assert (await stored_task(ctx, task_id)).status == "queued"


async def test_a_task_its_worker_gives_back_rings_the_workers(
    client: httpx.AsyncClient, ctx: ProcessContext, doorbell: DoorbellListener
) -> None:
    headers = await sign_up(client, "returned@example.com")
    task_id = (await submit(client, headers, GRAYSCALE)).json()["id"]
    async with ctx.sessions.begin() as session:
        assert await TaskRepository.from_session(session).claim(
            uuid.UUID(task_id), "giving-worker", utcnow()
        )
    doorbell.rung.clear()

    assert await release(ctx, uuid.UUID(task_id), "giving-worker")
    await asyncio.wait_for(doorbell.rung.wait(), RING_WITHIN)
    assert (await stored_task(ctx, task_id)).status == "queued"


async def test_cancelling_a_running_task_tells_the_workers(
    client: httpx.AsyncClient, ctx: ProcessContext, doorbell: DoorbellListener
) -> None:
    headers = await sign_up(client, "changed-mind@example.com")
    task_id = (await submit(client, headers, GRAYSCALE)).json()["id"]
    async with ctx.sessions.begin() as session:
        assert await TaskRepository.from_session(session).claim(
            uuid.UUID(task_id), "busy-worker", utcnow()
        )
    doorbell.cancelled.clear()

    cancelled = await client.delete(f"/v1/tasks/{task_id}", headers=headers)
    assert cancelled.json()["status"] == "cancelled"
    await asyncio.wait_for(doorbell.cancelled.wait(), RING_WITHIN)
