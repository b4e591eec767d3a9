"""Parts fail, nothing is lost: workers killed mid-task, a poison task, a broker that restarts
empty, messages that vanish, a task past its time limit, a warm shutdown. After each, every
accepted task reaches one final state and is debited once (and refunded only if it failed)."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from typing import Any

import httpx
import pytest
from redis import Redis

from pixelfleet.context import ProcessContext
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.settings import Settings
from pixelfleet.worker.names import priority_lists
from tests.api_helpers import balance_of, image_bytes, noise_png, sign_up, submit, whole_ledger
from tests.celery_mode.conftest import Processes, eventually, wait_for_status
from tests.harness.cpu import wait_until_idle
from tests.harness.redis import RedisServer

pytestmark = [pytest.mark.celery, pytest.mark.heavy]

# About two seconds of one core's work (an AVIF encode of noise): long enough to be caught
# mid-task, short enough that the tests which let it run to the end do not wait long.
SLOW = {"output": {"format": "avif", "quality": 90}}
SLOW_SOURCE = noise_png((1200, 900))
QUICK = {"operations": [{"op": "thumbnail", "width": 64, "height": 64}]}


async def _holder_pid(ctx: ProcessContext, task_id: str) -> int:
    """The pool process running the task (workers name themselves celery@host:pid)."""
    async with ctx.read_sessions() as session:
        task = await TaskRepository.from_session(session).get(uuid.UUID(task_id))
    assert task is not None
    assert task.worker is not None
    return int(task.worker.rpartition(":")[2])


async def _running(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: str, attempt: int = 1
) -> dict[str, Any]:
    async def started() -> bool:
        task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
        return bool(task["status"] == "running" and task["attempts"] == attempt)

    started.__name__ = f"attempt {attempt} of {task_id} running"
    await eventually(started, within=60, interval=0.05)
    return dict((await client.get(f"/v1/tasks/{task_id}", headers=headers)).json())


async def _debits_and_refunds(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    return [
        entry["kind"]
        for entry in await whole_ledger(client, headers)
        if entry["kind"] in {"task_debit", "task_refund"}
    ]


async def test_a_worker_killed_mid_task_is_recovered_and_the_task_finishes_once(
    client: httpx.AsyncClient, processes: Processes
) -> None:
    first = processes.worker()
    processes.beat()
    headers = await sign_up(client, "killed@example.com")
    before = await balance_of(client, headers)
    task_id = (await submit(client, headers, SLOW, SLOW_SOURCE)).json()["id"]
    await _running(client, headers, task_id)

    first.kill()  # the worker and its pool, mid-task, without a word
    processes.worker()
    task = await wait_for_status(client, headers, task_id, {"succeeded", "failed"}, within=90)

    assert task["status"] == "succeeded"
    assert task["attempts"] == 2
    assert len(task["outputs"]) == 1
    assert await _debits_and_refunds(client, headers) == ["task_debit"]
    assert await balance_of(client, headers) == before - task["cost"]


async def test_a_killed_pool_process_is_taken_over_at_once_without_the_recovery_job(
    client: httpx.AsyncClient, ctx: ProcessContext, processes: Processes
) -> None:
    processes.worker()  # no beat: the redelivered message itself takes the task over
    headers = await sign_up(client, "child@example.com")
    task_id = (await submit(client, headers, SLOW, SLOW_SOURCE)).json()["id"]
    await _running(client, headers, task_id)

    os.kill(await _holder_pid(ctx, task_id), signal.SIGKILL)
    task = await wait_for_status(client, headers, task_id, {"succeeded", "failed"}, within=60)

    assert task["status"] == "succeeded"
    assert task["attempts"] == 2
    assert await _debits_and_refunds(client, headers) == ["task_debit"]


@pytest.mark.parametrize("celery_overrides", [{"task_max_attempts": 2}])
async def test_a_task_that_kills_its_worker_every_time_fails_after_its_attempts_and_is_refunded(
    client: httpx.AsyncClient, ctx: ProcessContext, processes: Processes
) -> None:
    processes.worker()
    headers = await sign_up(client, "poison@example.com")
    before = await balance_of(client, headers)
    task_id = (await submit(client, headers, SLOW, SLOW_SOURCE)).json()["id"]

    for attempt in (1, 2):
        await _running(client, headers, task_id, attempt)
        os.kill(await _holder_pid(ctx, task_id), signal.SIGKILL)
    task = await wait_for_status(client, headers, task_id, {"succeeded", "failed"}, within=60)

    assert task["status"] == "failed"
    assert task["error"]["code"] == "worker-lost"
    assert task["attempts"] == 2
    assert await _debits_and_refunds(client, headers) == ["task_refund", "task_debit"]
    assert await balance_of(client, headers) == before


async def test_tasks_accepted_while_redis_is_down_are_dispatched_once_it_is_back(
    client: httpx.AsyncClient, processes: Processes, redis_server: RedisServer
) -> None:
    processes.worker()
    processes.beat()
    headers = await sign_up(client, "outage@example.com")
    before = await balance_of(client, headers)

    redis_server.halt()
    try:
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503
        assert "Redis" in not_ready.json()["detail"]
        accepted = [await submit(client, headers, QUICK, image_bytes()) for _ in range(3)]
    finally:
        redis_server.resume()  # empty: every message it held is gone

    assert [response.status_code for response in accepted] == [202, 202, 202]
    tasks = [
        await wait_for_status(client, headers, response.json()["id"], {"succeeded"}, within=90)
        for response in accepted
    ]
    assert all(task["attempts"] == 1 for task in tasks)
    assert await _debits_and_refunds(client, headers) == ["task_debit"] * 3
    assert await balance_of(client, headers) == before - sum(task["cost"] for task in tasks)
    assert (await client.get("/readyz")).status_code == 200


async def test_a_task_whose_message_was_lost_is_dispatched_again(
    client: httpx.AsyncClient, processes: Processes, settings: Settings
) -> None:
    headers = await sign_up(client, "lost@example.com")
    task_id = (await submit(client, headers, QUICK, image_bytes())).json()["id"]
    assert settings.redis_url is not None
    broker = Redis.from_url(settings.redis_url)
    assert broker.delete(*priority_lists(settings.celery_queue)) == 1  # the message is gone
    broker.close()

    processes.worker()
    processes.beat()
    task = await wait_for_status(client, headers, task_id, {"succeeded"}, within=60)

    assert task["attempts"] == 1


@pytest.mark.parametrize(
    "celery_overrides",
    [{"task_soft_time_limit_seconds": 0.3, "task_time_limit_seconds": 30.0}],
)
async def test_a_task_past_its_soft_time_limit_fails_cleanly_stops_and_is_refunded(
    client: httpx.AsyncClient, processes: Processes
) -> None:
    worker = processes.worker()
    headers = await sign_up(client, "slow@example.com")
    before = await balance_of(client, headers)
    task_id = (await submit(client, headers, SLOW, SLOW_SOURCE)).json()["id"]

    task = await wait_for_status(client, headers, task_id, {"succeeded", "failed"}, within=60)

    assert task["status"] == "failed"
    assert task["error"]["code"] == "time-limit"
    # Its run was ended with it, not left going in the pool process.
    await asyncio.to_thread(wait_until_idle, worker.process.pid, within=2.0)
    assert await balance_of(client, headers) == before


async def test_sigterm_lets_the_running_task_finish_before_the_worker_exits(
    client: httpx.AsyncClient, processes: Processes
) -> None:
    worker = processes.worker()
    headers = await sign_up(client, "warm@example.com")
    task_id = (await submit(client, headers, SLOW, SLOW_SOURCE)).json()["id"]
    await _running(client, headers, task_id)

    assert worker.terminate(timeout=60) == 0

    task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert task["status"] == "succeeded"
    assert task["attempts"] == 1
