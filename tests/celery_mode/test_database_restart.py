"""PostgreSQL crashes and comes back while workers are busy: requests in the gap get a clear
503, and every task accepted before it is finished once and debited once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from pixelfleet.db import create_engine
from pixelfleet.schema_migrations import upgrade_to_head
from tests.api_helpers import PROBLEM, balance_of, noise_png, sign_up, submit, whole_ledger
from tests.celery_mode.conftest import Processes, eventually, wait_for_status
from tests.harness.postgres import PostgresServer

pytestmark = pytest.mark.celery

MEDIUM = {"output": {"format": "webp", "quality": 90}}


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own, since the test crashes it."""
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def database_url(own_postgres: PostgresServer) -> str:
    url = own_postgres.url("postgres")
    engine = create_engine(url)
    await upgrade_to_head(engine)
    await engine.dispose()
    return url


async def test_a_database_crash_under_load_loses_no_task_and_no_credit(
    client: httpx.AsyncClient, processes: Processes, own_postgres: PostgresServer
) -> None:
    processes.worker(concurrency=2)
    processes.beat()
    headers = await sign_up(client, "crash@example.com")
    before = await balance_of(client, headers)
    source = noise_png((1200, 900))
    accepted = [(await submit(client, headers, MEDIUM, source)).json()["id"] for _ in range(8)]

    async def busy() -> bool:
        task = (await client.get(f"/v1/tasks/{accepted[0]}", headers=headers)).json()
        return bool(task["status"] != "queued")

    await eventually(busy, within=60, interval=0.05)
    own_postgres.halt()
    try:
        refused = await submit(client, headers, MEDIUM, source)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == PROBLEM
        assert "Retry-After" in refused.headers
        await asyncio.sleep(2)
    finally:
        own_postgres.resume()

    tasks = [
        await wait_for_status(client, headers, task_id, {"succeeded", "failed"}, within=120)
        for task_id in accepted
    ]
    assert [task["status"] for task in tasks] == ["succeeded"] * len(accepted)
    kinds = [entry["kind"] for entry in await whole_ledger(client, headers)]
    assert kinds.count("task_debit") == len(accepted)
    assert kinds.count("task_refund") == 0
    assert await balance_of(client, headers) == before - sum(task["cost"] for task in tasks)
