"""Workers take queued tasks with one statement each: however many claim at once, every task is
taken by one of them, once, oldest first."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from pixelfleet.context import ProcessContext
from pixelfleet.db import unit_of_work, utcnow
from pixelfleet.jobs.processing import process_oldest_queued
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.settings import Settings
from tests.api_helpers import image_bytes, sign_up, submit

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

QUICK = {"operations": [{"op": "resize", "width": 16}], "output": {"format": "png"}}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Every task handed out at once: this is about claiming (fair sharing's turns are
    tests/jobs/test_fair_dispatch.py's)."""
    return settings.model_copy(update={"dispatch_ahead": 100_000})


async def _queue(client: httpx.AsyncClient, email: str, count: int) -> list[str]:
    headers = await sign_up(client, email)
    image = image_bytes("PNG", (32, 24))
    ids = []
    for _ in range(count):
        response = await submit(client, headers, QUICK, image)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


async def test_two_workers_claiming_at_once_take_each_task_once(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    queued = await _queue(client, "claimers@example.com", 50)

    both_started = asyncio.Barrier(2)

    async def claim_all(worker: str) -> list[uuid.UUID]:
        taken: list[uuid.UUID] = []
        while True:
            async with unit_of_work(ctx) as session:
                claimed = await TaskRepository.from_session(session).claim_next(worker, utcnow())
            if claimed is None:
                return taken
            assert claimed.attempt == 1
            taken.append(claimed.task_id)
            if len(taken) == 1:
                await both_started.wait()  # each has claimed once before either goes on
            await asyncio.sleep(0)  # let the other worker claim in between

    first, second = await asyncio.gather(claim_all("worker-a"), claim_all("worker-b"))

    claimed = first + second
    assert len(claimed) == len(set(claimed)) == 50
    assert {str(task_id) for task_id in claimed} == set(queued)
    assert first  # both took part
    assert second
    # Each worker took its tasks in the order they were queued.
    order = {task_id: position for position, task_id in enumerate(queued)}
    for taken in (first, second):
        positions = [order[str(task_id)] for task_id in taken]
        assert positions == sorted(positions)
    async with ctx.read_sessions() as session:
        repo = TaskRepository.from_session(session)
        for worker, taken in (("worker-a", first), ("worker-b", second)):
            for task_id in taken:
                assert await repo.is_held_by(task_id, worker)


async def test_two_embedded_workers_run_every_queued_task_once(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "runners@example.com")
    image = image_bytes("PNG", (32, 24))
    queued = [(await submit(client, headers, QUICK, image)).json()["id"] for _ in range(8)]

    async def run_all(worker: str) -> list[str]:
        outcomes = []
        while (outcome := await process_oldest_queued(ctx, worker)) is not None:
            outcomes.append(outcome)
        return outcomes

    first, second = await asyncio.gather(run_all("worker-a"), run_all("worker-b"))

    assert first + second == ["succeeded"] * 8
    for task_id in queued:
        task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
        assert (task["status"], task["attempts"]) == ("succeeded", 1)
    assert await process_oldest_queued(ctx, "worker-a") is None
