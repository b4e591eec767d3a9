"""The task metrics move with what users see happen to their tasks: accepted, started, finished
(once, by outcome), the work each step took and the bytes in and out. The registry is shared by
every test in the process, so each test compares readings before and after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from pixelfleet.context import ProcessContext
from pixelfleet.db import unit_of_work, utcnow, when_committed
from pixelfleet.jobs import maintenance
from pixelfleet.jobs import service as jobs
from pixelfleet.jobs.pipeline_runs import PipelineCrashed, PipelineRun
from pixelfleet.jobs.processing import process_task
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.models import Task
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import image_bytes, noise_png, sign_up, submit, truncated_jpeg
from tests.records import claim_an_hour_ago, stored_task

Reading = dict[tuple[str, tuple[tuple[str, str], ...]], float]

GREY_WEBP = {"operations": [{"op": "grayscale"}], "output": {"format": "webp"}}
# Passes every check at submission, then fails while encoding: no quality fits in one byte.
TOO_SMALL_JPEG = {"output": {"format": "jpeg", "max_bytes": 1}}
SLOW = {"operations": [{"op": "rotate", "angle": 33}], "output": {"format": "avif"}}


class Aborted(Exception):
    """Raised by a test to roll its transaction back."""


def _read() -> Reading:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in REGISTRY.collect()
        if metric.name.startswith("pixelfleet_")
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def _since(before: Reading) -> Callable[..., float]:
    """How far a sample moved since `before`: moved(name, **labels)."""
    after = _read()

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    return moved


def _finished(moved: Callable[..., float]) -> dict[str, float]:
    return {
        outcome: moved("pixelfleet_tasks_finished_total", outcome=outcome)
        for outcome in ("succeeded", "failed", "cancelled")
    }


def _runs(moved: Callable[..., float]) -> dict[str, float]:
    return {
        outcome: moved("pixelfleet_task_run_seconds_count", outcome=outcome)
        for outcome in ("succeeded", "failed", "cancelled")
    }


async def _submit(client: httpx.AsyncClient, headers: dict[str, str], *args: Any) -> Any:
    response = await submit(client, headers, *args)
    assert response.status_code == 202, response.text
    return response.json()


async def test_successes_and_failures_count_once_each_with_their_times_and_bytes(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "counted@example.com")
    upload = image_bytes("JPEG", (640, 480))
    corrupt = truncated_jpeg()
    before = _read()
    ok = [await _submit(client, headers, GREY_WEBP, upload) for _ in range(3)]
    await _submit(client, headers, {}, corrupt)
    await _submit(client, headers, TOO_SMALL_JPEG, upload)
    accepted = _since(before)
    assert accepted("pixelfleet_tasks_submitted_total") == 5
    assert accepted("pixelfleet_bytes_received_total") == 4 * len(upload) + len(corrupt)
    assert _finished(accepted) == {"succeeded": 0, "failed": 0, "cancelled": 0}

    assert await drain_queue(ctx) == ["succeeded"] * 3 + ["failed"] * 2
    moved = _since(before)
    assert _finished(moved) == {"succeeded": 3, "failed": 2, "cancelled": 0}
    assert _runs(moved) == {"succeeded": 3, "failed": 2, "cancelled": 0}
    assert moved("pixelfleet_task_queue_seconds_count") == 5
    # Only the three pipelines that ran to their end are timed and measured.
    assert moved("pixelfleet_operation_seconds_count", operation="decode") == 3
    assert moved("pixelfleet_operation_seconds_count", operation="grayscale") == 3
    assert moved("pixelfleet_encode_seconds_count", format="webp") == 3
    assert moved("pixelfleet_encode_seconds_count", format="jpeg") == 0
    assert moved("pixelfleet_source_megapixels_total") == pytest.approx(3 * 640 * 480 / 1e6)
    results = [(await stored_task(ctx, task["id"])).outputs[0] for task in ok]
    assert moved("pixelfleet_bytes_produced_total", format="webp") == sum(
        output.bytes for output in results
    )
    assert moved("pixelfleet_bytes_produced_total", format="jpeg") == 0


async def test_each_variant_is_encoded_and_counted_in_its_own_format(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "variants@example.com")
    pipeline = {
        "operations": [{"op": "grayscale"}],
        "variants": [
            {
                "name": "thumb",
                "operations": [{"op": "thumbnail", "width": 100, "height": 100}],
                "output": {"format": "webp"},
            },
            {"name": "original", "output": {"format": "png"}},
        ],
    }
    before = _read()
    task = await _submit(client, headers, pipeline)
    assert await drain_queue(ctx) == ["succeeded"]
    moved = _since(before)
    assert moved("pixelfleet_operation_seconds_count", operation="decode") == 1
    assert moved("pixelfleet_operation_seconds_count", operation="grayscale") == 1
    assert moved("pixelfleet_operation_seconds_count", operation="thumbnail") == 1
    assert moved("pixelfleet_encode_seconds_count", format="webp") == 1
    assert moved("pixelfleet_encode_seconds_count", format="png") == 1
    outputs = {output.name: output for output in (await stored_task(ctx, task["id"])).outputs}
    assert moved("pixelfleet_bytes_produced_total", format="webp") == outputs["thumb"].bytes
    assert moved("pixelfleet_bytes_produced_total", format="png") == outputs["original"].bytes


async def test_submissions_refused_or_replayed_count_nothing_more(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "refused@example.com")
    upload = image_bytes("JPEG", (640, 480))
    before = _read()
    outside = {"operations": [{"op": "crop", "x": 5000, "y": 0, "width": 10, "height": 10}]}
    assert (await submit(client, headers, outside)).status_code == 422
    keyed = {"Idempotency-Key": "once"}
    first = await submit(client, headers, GREY_WEBP, upload, extra_headers=keyed)
    again = await submit(client, headers, GREY_WEBP, upload, extra_headers=keyed)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    moved = _since(before)
    assert moved("pixelfleet_tasks_submitted_total") == 1
    assert moved("pixelfleet_bytes_received_total") == len(upload)


async def test_a_task_cancelled_while_queued_counts_once_without_a_run(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "cancel-queued@example.com")
    task = await _submit(client, headers, GREY_WEBP)
    # An earlier attempt started it; its worker vanished and upkeep put it back in the queue.
    await claim_an_hour_ago(ctx, task["id"], "worker-that-died")
    assert await maintenance.recover_stale_tasks(ctx) == 1
    before = _read()
    assert (await client.delete(f"/v1/tasks/{task['id']}", headers=headers)).status_code == 200
    assert (await client.delete(f"/v1/tasks/{task['id']}", headers=headers)).status_code == 409
    assert await drain_queue(ctx) == []
    moved = _since(before)
    assert _finished(moved) == {"succeeded": 0, "failed": 0, "cancelled": 1}
    assert _runs(moved) == {"succeeded": 0, "failed": 0, "cancelled": 0}
    assert moved("pixelfleet_task_queue_seconds_count") == 0


async def test_a_task_cancelled_while_running_counts_as_cancelled_only(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "cancel-running@example.com")
    task = await _submit(client, headers, SLOW, noise_png((1400, 1400)))
    before = _read()
    running = asyncio.create_task(process_task(ctx, uuid.UUID(task["id"]), "busy-worker"))
    for _ in range(1000):
        if (await stored_task(ctx, task["id"])).status == "running":
            break
        await asyncio.sleep(0.01)
    assert (await client.delete(f"/v1/tasks/{task['id']}", headers=headers)).status_code == 200
    assert await running == "discarded"

    moved = _since(before)
    assert _finished(moved) == {"succeeded": 0, "failed": 0, "cancelled": 1}
    assert _runs(moved) == {"succeeded": 0, "failed": 0, "cancelled": 1}
    assert moved("pixelfleet_task_queue_seconds_count") == 1
    assert moved("pixelfleet_bytes_produced_total", format="avif") == 0


async def test_the_queue_time_runs_from_submission_to_the_first_start_only(
    client: httpx.AsyncClient, ctx: ProcessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await sign_up(client, "waited@example.com")
    task = await _submit(client, headers, GREY_WEBP)
    async with ctx.sessions.begin() as session:  # submitted two hours ago
        stored = await session.get(Task, uuid.UUID(task["id"]))
        assert stored is not None
        stored.created_at = utcnow() - timedelta(hours=2)
    run_pipeline = ctx.pipelines.run
    crashes = [PipelineCrashed("a bug that strikes once")]

    async def crashing_once(*args: Any, **kwargs: Any) -> PipelineRun:
        if crashes:
            raise crashes.pop()
        return await run_pipeline(*args, **kwargs)

    monkeypatch.setattr(ctx.pipelines, "run", crashing_once)
    before = _read()
    # Requeued after the crash (not a final state), then started again: that second start
    # is no wait in the queue.
    assert await drain_queue(ctx) == ["requeued", "succeeded"]
    moved = _since(before)
    assert moved("pixelfleet_task_queue_seconds_count") == 1
    assert 7200 <= moved("pixelfleet_task_queue_seconds_sum") < 7300
    assert _finished(moved) == {"succeeded": 1, "failed": 0, "cancelled": 0}
    assert moved("pixelfleet_task_run_seconds_sum", outcome="succeeded") < 600
    assert moved("pixelfleet_operation_seconds_count", operation="decode") == 1


async def test_a_task_requeued_by_upkeep_is_not_finished(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "requeued@example.com")
    task = await _submit(client, headers, GREY_WEBP)
    before = _read()
    await claim_an_hour_ago(ctx, task["id"], "worker-that-died")
    assert await maintenance.recover_stale_tasks(ctx) == 1
    assert _finished(_since(before)) == {"succeeded": 0, "failed": 0, "cancelled": 0}
    assert await drain_queue(ctx) == ["succeeded"]
    assert _finished(_since(before)) == {"succeeded": 1, "failed": 0, "cancelled": 0}


async def test_upkeep_counts_the_tasks_it_fails_with_their_run_time(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "upkeep@example.com")
    overdue = await _submit(client, headers, GREY_WEBP)
    poison = await _submit(client, headers, GREY_WEBP)
    before = _read()
    await claim_an_hour_ago(ctx, overdue["id"], "worker-that-hangs")
    async with ctx.sessions.begin() as session:  # ... whose heartbeat goes on
        await TaskRepository.from_session(session).record_progress(
            uuid.UUID(overdue["id"]), "worker-that-hangs", 10, "encoding", utcnow()
        )
    assert await maintenance.fail_overdue_tasks(ctx) == 1
    assert await maintenance.fail_overdue_tasks(ctx) == 0
    for attempt in range(ctx.settings.task_max_attempts):
        await claim_an_hour_ago(ctx, poison["id"], f"worker-{attempt}")
        await maintenance.recover_stale_tasks(ctx)
    assert (await stored_task(ctx, poison["id"])).status == "failed"
    assert await maintenance.recover_stale_tasks(ctx) == 0

    moved = _since(before)
    assert _finished(moved) == {"succeeded": 0, "failed": 2, "cancelled": 0}
    assert moved("pixelfleet_task_run_seconds_count", outcome="failed") == 2
    assert moved("pixelfleet_task_run_seconds_sum", outcome="failed") >= 2 * 3600


async def test_a_worker_taking_over_a_task_that_lost_every_attempt_fails_it_once(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "taken@example.com")
    task = await _submit(client, headers, GREY_WEBP)
    await claim_an_hour_ago(ctx, task["id"], "worker-gone")
    async with ctx.sessions.begin() as session:
        stored = await session.get(Task, uuid.UUID(task["id"]))
        assert stored is not None
        stored.attempts = ctx.settings.task_max_attempts
    before = _read()

    def holder_stopped(_holder: str) -> bool:
        return True

    outcome = await process_task(ctx, uuid.UUID(task["id"]), "heir", take_over=holder_stopped)
    assert outcome == "failed"
    assert await process_task(ctx, uuid.UUID(task["id"]), "heir", take_over=holder_stopped) == (
        "skipped"
    )
    moved = _since(before)
    assert _finished(moved) == {"succeeded": 0, "failed": 1, "cancelled": 0}
    assert moved("pixelfleet_task_run_seconds_sum", outcome="failed") >= 3600
    assert moved("pixelfleet_task_queue_seconds_count") == 0


async def test_a_task_past_its_soft_time_limit_counts_as_failed_and_untimed(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "slow@example.com")
    await _submit(client, headers, SLOW, noise_png((1400, 1400)))
    ctx.settings.task_soft_time_limit_seconds = 0.05
    before = _read()
    assert await drain_queue(ctx) == ["failed"]
    moved = _since(before)
    assert _finished(moved) == {"succeeded": 0, "failed": 1, "cancelled": 0}
    assert _runs(moved) == {"succeeded": 0, "failed": 1, "cancelled": 0}
    assert moved("pixelfleet_operation_seconds_count", operation="decode") == 0
    assert moved("pixelfleet_source_megapixels_total") == 0


async def test_a_cancellation_that_is_rolled_back_counts_nothing(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "undone@example.com")
    task = await _submit(client, headers, GREY_WEBP)
    before = _read()

    async def cancel_then_fail() -> None:
        async with unit_of_work(ctx) as session:
            cancelled = await jobs.cancel_task_by_id(session, uuid.UUID(task["id"]), ctx.retention)
            assert cancelled is not None  # written, and refunded in a savepoint released since
            assert _finished(_since(before))["cancelled"] == 0  # not before the commit
            raise Aborted

    with pytest.raises(Aborted):
        await cancel_then_fail()
    assert _finished(_since(before)) == {"succeeded": 0, "failed": 0, "cancelled": 0}
    assert (await stored_task(ctx, task["id"])).status == "queued"


async def test_what_waits_for_the_commit_is_dropped_with_its_savepoint(
    ctx: ProcessContext,
) -> None:
    done: list[str] = []
    async with ctx.sessions.begin() as session:
        await session.execute(select(1))
        when_committed(session, lambda: done.append("outer"))

        async def in_a_savepoint_then_fail() -> None:
            async with session.begin_nested():
                when_committed(session, lambda: done.append("rolled back"))
                raise Aborted

        with pytest.raises(Aborted):
            await in_a_savepoint_then_fail()
        async with session.begin_nested():
            when_committed(session, lambda: done.append("released"))
        assert done == []
    assert done == ["outer", "released"]

    async with ctx.sessions() as session:
        await session.execute(select(1))
        when_committed(session, lambda: done.append("never committed"))
        await session.close()
        await session.execute(select(1))
        await session.commit()
    assert done == ["outer", "released"]
