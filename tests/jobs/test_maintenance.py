"""Scheduled upkeep and races: lost workers, cancelled running tasks, expired files."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest

from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.jobs import maintenance
from pixelfleet.jobs.processing import process_task
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.models import Task
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import balance_of, noise_png, sign_up, submit
from tests.records import claim_an_hour_ago, stored_task

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends


async def test_a_task_whose_worker_vanished_is_requeued_and_then_completes(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "lost@example.com")
    task_id = (await submit(client, headers, {"operations": [{"op": "grayscale"}]})).json()["id"]
    await claim_an_hour_ago(ctx, task_id, "worker-that-died")

    assert await maintenance.recover_stale_tasks(ctx) == 1
    assert (await stored_task(ctx, task_id)).status == "queued"
    assert await drain_queue(ctx) == ["succeeded"]
    task = await stored_task(ctx, task_id)
    assert (task.status, task.attempts) == ("succeeded", 2)


async def test_a_task_that_keeps_losing_its_worker_fails_and_is_refunded(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "poison@example.com")
    task_id = (await submit(client, headers, {"operations": [{"op": "grayscale"}]})).json()["id"]
    for attempt in range(ctx.settings.task_max_attempts):
        await claim_an_hour_ago(ctx, task_id, f"worker-{attempt}")
        await maintenance.recover_stale_tasks(ctx)
    task = await stored_task(ctx, task_id)
    assert (task.status, task.error_code) == ("failed", "worker-lost")
    assert await balance_of(client, headers) == 100
    assert await maintenance.recover_stale_tasks(ctx) == 0
    assert await balance_of(client, headers) == 100


async def test_a_task_cancelled_while_running_keeps_no_result(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "quit@example.com")
    slow = {"operations": [{"op": "rotate", "angle": 33}], "output": {"format": "avif"}}
    task = (await submit(client, headers, slow, noise_png((1400, 1400)))).json()
    running = asyncio.create_task(process_task(ctx, uuid.UUID(task["id"]), "busy-worker"))
    for _ in range(1000):
        if (await stored_task(ctx, task["id"])).status == "running":
            break
        await asyncio.sleep(0.01)
    cancelled = await client.delete(f"/v1/tasks/{task['id']}", headers=headers)
    assert cancelled.json()["status"] == "cancelled"

    assert await running == "discarded"
    assert (await stored_task(ctx, task["id"])).status == "cancelled"
    results = ctx.settings.storage_root / "results"
    assert not results.exists() or not any(results.iterdir())
    # A running task was charged for work already under way.
    assert await balance_of(client, headers) == 100 - task["cost"]


async def test_expired_uploads_and_results_are_deleted(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "old@example.com")
    task_id = (await submit(client, headers, {"operations": [{"op": "grayscale"}]})).json()["id"]
    await drain_queue(ctx)
    task = await stored_task(ctx, task_id)
    result_key = task.outputs[0].key
    assert result_key is not None
    assert await ctx.storage.exists(result_key)

    assert await maintenance.purge_expired_files(ctx) == 0
    async with ctx.sessions.begin() as session:
        stored = await session.get(Task, task.id)
        assert stored is not None
        stored.expires_at = utcnow() - timedelta(seconds=1)
    assert await maintenance.purge_expired_files(ctx) == 1
    assert not await ctx.storage.exists(result_key)
    assert not await ctx.storage.exists(task.source_key)
    result = await client.get(f"/v1/tasks/{task_id}/result", headers=headers)
    assert result.status_code == 410
    assert result.json()["type"].endswith("/result-expired")
    shown = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert shown["result"]["available"] is False


async def test_recovery_leaves_a_task_whose_worker_is_still_reporting(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "alive@example.com")
    task_id = (await submit(client, headers, {"operations": [{"op": "grayscale"}]})).json()["id"]
    async with ctx.sessions.begin() as session:
        assert await TaskRepository.from_session(session).claim(
            uuid.UUID(task_id), "busy-worker", utcnow()
        )
    assert await maintenance.recover_stale_tasks(ctx) == 0
    # Even a recovery that read the task as silent loses to a heartbeat written since.
    async with ctx.sessions.begin() as session:
        repo = TaskRepository.from_session(session)
        assert not await repo.requeue(
            uuid.UUID(task_id),
            "busy-worker",
            utcnow(),
            silent_since=utcnow() - timedelta(minutes=5),
        )
    assert (await stored_task(ctx, task_id)).status == "running"


async def test_a_task_running_past_its_hard_limit_fails_and_is_refunded(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "overdue@example.com")
    task_id = (await submit(client, headers, {"operations": [{"op": "grayscale"}]})).json()["id"]
    await claim_an_hour_ago(
        ctx, task_id, "worker-that-hangs"
    )  # an hour ago, far past the hard limit
    async with ctx.sessions.begin() as session:  # ... yet its heartbeat goes on
        await TaskRepository.from_session(session).record_progress(
            uuid.UUID(task_id), "worker-that-hangs", 10, "encoding", utcnow()
        )

    assert await maintenance.recover_stale_tasks(ctx) == 0
    assert await maintenance.fail_overdue_tasks(ctx) == 1

    task = await stored_task(ctx, task_id)
    assert (task.status, task.error_code) == ("failed", "time-limit")
    assert await balance_of(client, headers) == 100
    assert await maintenance.fail_overdue_tasks(ctx) == 0


async def test_a_task_started_within_the_hard_limit_is_left_running(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "busy@example.com")
    task_id = (await submit(client, headers, {"operations": [{"op": "grayscale"}]})).json()["id"]
    async with ctx.sessions.begin() as session:
        assert await TaskRepository.from_session(session).claim(
            uuid.UUID(task_id), "busy-worker", utcnow()
        )

    assert await maintenance.fail_overdue_tasks(ctx) == 0
    assert (await stored_task(ctx, task_id)).status == "running"


async def test_the_embedded_mode_has_nothing_to_dispatch_again(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "queued@example.com")
    task_id = (await submit(client, headers, {"operations": [{"op": "grayscale"}]})).json()["id"]
    async with ctx.sessions.begin() as session:  # dispatched long ago, never started
        await session.execute(
            Task.__table__.update()
            .where(Task.id == uuid.UUID(task_id))
            .values(dispatched_at=utcnow() - timedelta(hours=1))
        )

    # The embedded launcher hands out nothing (its workers poll the table), so a re-dispatch is
    # a no-op that stamps the task and leaves it queued for them.
    assert await maintenance.redispatch_stale_tasks(ctx) == 1
    assert await maintenance.redispatch_stale_tasks(ctx) == 0
    assert (await stored_task(ctx, task_id)).status == "queued"
