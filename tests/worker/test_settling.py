"""A worker's pipeline process does not wait for the worker's bookkeeping: the result of one
run is stored and settled while the next task already runs, and a worker that stops settles
what it holds before it ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pixelfleet.context import ProcessContext
from pixelfleet.jobs.processing import Outcome, Settling
from pixelfleet.storage.base import PresignedPut, StagedObject, Storage
from pixelfleet.worker.embedded import run_worker
from tests.api_helpers import sign_up, submit
from tests.records import stored_task

GRAYSCALE = {"operations": [{"op": "grayscale"}]}
WITHIN = 30.0


class HeldResultWrites:
    """The context's storage, except that writing a result waits until `release` is set
    (`holding` tells that one waits): a slow store, made as slow as a test needs."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def put(self, key: str, data: bytes) -> None:
        if key.startswith("results/"):
            self.holding.set()
            await self.release.wait()
        await self.inner.put(key, data)

    def stage(self) -> StagedObject:
        return self.inner.stage()

    def presigned_put(
        self, key: str, content_type: str, size: int, expires_in_seconds: int
    ) -> PresignedPut | None:
        return self.inner.presigned_put(key, content_type, size, expires_in_seconds)

    async def get(self, key: str) -> bytes:
        return await self.inner.get(key)

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)

    async def open_stream(
        self, key: str, chunk_size: int = 64 * 1024, *, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        return await self.inner.open_stream(key, chunk_size, start=start, length=length)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)


@pytest.fixture
def held(ctx: ProcessContext) -> HeldResultWrites:
    storage = HeldResultWrites(ctx.storage)
    ctx.storage = storage
    return storage


async def until_status(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: str, status: str
) -> None:
    """Follows the task (long-polling it) until it has `status`."""

    async def follow() -> None:
        seen = None
        while seen != status:
            response = await client.get(f"/v1/tasks/{task_id}?wait=5", headers=headers)
            seen = response.json()["status"]

    await asyncio.wait_for(follow(), WITHIN)


async def test_the_next_task_runs_while_the_last_result_is_stored(
    client: httpx.AsyncClient, ctx: ProcessContext, held: HeldResultWrites
) -> None:
    headers = await sign_up(client, "overlap@example.com")
    first = (await submit(client, headers, GRAYSCALE)).json()["id"]
    second = (await submit(client, headers, GRAYSCALE)).json()["id"]
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(ctx, "overlapping-worker", stop))
    try:
        await asyncio.wait_for(held.holding.wait(), WITHIN)
        # The first result cannot be written yet, and the second task is run all the same.
        await until_status(client, headers, second, "running")
        assert (await stored_task(ctx, first)).status == "running"
        held.release.set()
        await until_status(client, headers, first, "succeeded")
        await until_status(client, headers, second, "succeeded")
    finally:
        held.release.set()
        stop.set()
        await asyncio.wait_for(worker, WITHIN)


async def test_a_stopping_worker_settles_the_result_it_holds(
    client: httpx.AsyncClient, ctx: ProcessContext, held: HeldResultWrites
) -> None:
    headers = await sign_up(client, "stopping@example.com")
    task_id = (await submit(client, headers, GRAYSCALE)).json()["id"]
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(ctx, "stopping-worker", stop))
    await asyncio.wait_for(held.holding.wait(), WITHIN)
    stop.set()
    await asyncio.wait({worker}, timeout=0.3)
    assert not worker.done()  # it does not end while it holds a result not yet stored
    held.release.set()
    await asyncio.wait_for(worker, WITHIN)
    assert (await stored_task(ctx, task_id)).status == "succeeded"


async def test_a_result_is_settled_even_if_the_worker_is_cancelled_while_it_waits() -> None:
    """A worker waits for its previous result before it goes on: cancelling it then (its loop
    shutting down, say) drops neither result."""
    settling = Settling("cancelled-worker")
    gate = asyncio.Event()
    settled: list[str] = []

    async def settle(name: str, *, held: bool = False) -> Outcome:
        if held:
            await gate.wait()
        settled.append(name)
        return "succeeded"

    await settling.start(settle("first", held=True))
    waiting = asyncio.create_task(settling.start(settle("second")))
    await asyncio.wait({waiting}, timeout=0.05)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    gate.set()
    assert await asyncio.wait_for(settling.finish(), WITHIN) == "succeeded"
    assert settled == ["first", "second"]


async def test_a_failed_settle_is_reported_and_the_next_one_goes_on() -> None:
    settling = Settling("unlucky-worker")

    async def broken() -> Outcome:
        raise RuntimeError("the storage is away")

    async def fine() -> Outcome:
        return "succeeded"

    await settling.start(broken())
    await settling.start(fine())  # waits for the broken one, which does not stop it
    assert await settling.finish() == "succeeded"
