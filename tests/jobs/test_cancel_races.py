"""A cancel racing a worker's claim and completion of the same task, many times over: each task
ends in exactly one final state, is refunded at most once (and only when it never ran), keeps
no result when cancelled, and the books balance (`pixelfleet admin audit`'s check)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest

from pixelfleet.context import ProcessContext
from pixelfleet.credits.service import audit_ledger
from pixelfleet.jobs.processing import process_task
from tests.api_helpers import balance_of, image_bytes, sign_up, submit, whole_ledger

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

RACES = 24
QUICK = {"operations": [{"op": "resize", "width": 16}], "output": {"format": "png"}}


async def test_cancel_and_completion_racing_settle_each_task_once(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "racer@example.com")
    image = image_bytes("PNG", (64, 48))
    tasks = [(await submit(client, headers, QUICK, image)).json() for _ in range(RACES)]
    cost = tasks[0]["cost"]

    async def race(task_id: str, head_start: float) -> tuple[str, int]:
        async def cancel() -> int:
            await asyncio.sleep(head_start)
            return (await client.delete(f"/v1/tasks/{task_id}", headers=headers)).status_code

        outcome, status = await asyncio.gather(
            process_task(ctx, uuid.UUID(task_id), f"worker-{task_id[:8]}"), cancel()
        )
        return outcome, status

    # Head starts from none to a few milliseconds: the cancel lands before the claim, while
    # the task runs, or after it succeeded.
    results = await asyncio.gather(
        *(race(task["id"], (index % 6) * 0.002) for index, task in enumerate(tasks))
    )

    finals = {
        task["id"]: (await client.get(f"/v1/tasks/{task['id']}", headers=headers)).json()
        for task in tasks
    }
    states = Counter(task["status"] for task in finals.values())
    assert set(states) <= {"succeeded", "cancelled"}
    assert sum(states.values()) == RACES
    for (outcome, cancel_status), task in zip(results, tasks, strict=True):
        final = finals[task["id"]]
        if final["status"] == "succeeded":
            assert outcome == "succeeded"
            assert cancel_status == 409  # too late: the task had finished
        else:
            assert cancel_status == 200
            assert outcome in {"skipped", "discarded"}
            assert final["outputs"] == []

    ledger = await whole_ledger(client, headers)
    refunds = Counter(entry["task_id"] for entry in ledger if entry["kind"] == "task_refund")
    assert all(count == 1 for count in refunds.values())
    skipped = {
        task["id"]
        for (outcome, _), task in zip(results, tasks, strict=True)
        if outcome == "skipped"
    }
    assert set(refunds) == skipped  # refunded exactly when it never ran
    assert await balance_of(client, headers) == 100 - cost * (RACES - len(skipped))

    async with ctx.read_sessions() as session:
        assert (await audit_ledger(session)).balanced
