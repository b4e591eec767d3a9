"""PIXELFLEET_MAX_ACTIVE_TASKS_PER_USER: an account's queued and running tasks are bounded. A
refusal is a 429 `quota-exceeded` with `Retry-After` (the room comes back as tasks finish), it
stores and charges nothing, and a replay of an accepted task is never refused by it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pixelfleet.context import ProcessContext
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import (
    assert_quota_exceeded,
    balance_of,
    image_bytes,
    sign_up,
    submit,
    whole_ledger,
)

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

QUICK = {"operations": [{"op": "resize", "width": 16}], "output": {"format": "png"}}
IMAGE = image_bytes("PNG", (48, 32))


def _stored_sources(ctx: ProcessContext) -> int:
    folder = ctx.settings.storage_root / "sources"
    return len(list(folder.iterdir())) if folder.exists() else 0


async def test_an_account_at_its_active_task_quota_submits_again_once_tasks_finish(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.max_active_tasks_per_user = 2
    headers = await sign_up(client, "busy@example.com")
    first = [await submit(client, headers, QUICK, IMAGE) for _ in range(2)]
    assert [answer.status_code for answer in first] == [202, 202]
    cost = first[0].json()["cost"]

    refused = await submit(client, headers, QUICK, IMAGE)
    assert_quota_exceeded(refused, "max_active_tasks_per_user", status=429, limit=2, usage=2)
    assert await balance_of(client, headers) == 100 - 2 * cost  # nothing charged
    assert len((await client.get("/v1/tasks", headers=headers)).json()["items"]) == 2
    assert _stored_sources(ctx) == 2  # nor stored
    other = await sign_up(client, "idle@example.com")
    assert (await submit(client, other, QUICK, IMAGE)).status_code == 202  # per account

    # A cancelled task, and finished ones, give their room back.
    cancelled = await client.delete(f"/v1/tasks/{first[0].json()['id']}", headers=headers)
    assert cancelled.status_code == 200
    assert (await submit(client, headers, QUICK, IMAGE)).status_code == 202
    assert (await submit(client, headers, QUICK, IMAGE)).status_code == 429
    assert set(await drain_queue(ctx)) == {"succeeded"}
    again = [await submit(client, headers, QUICK, IMAGE) for _ in range(2)]
    assert [answer.status_code for answer in again] == [202, 202]


async def test_a_replay_of_an_accepted_task_is_not_refused_by_the_quota(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.max_active_tasks_per_user = 1
    headers = await sign_up(client, "retrying@example.com")
    key = {"Idempotency-Key": "upload-7"}
    accepted = await submit(client, headers, QUICK, IMAGE, extra_headers=key)
    replayed = await submit(client, headers, QUICK, IMAGE, extra_headers=key)
    assert (accepted.status_code, replayed.status_code) == (202, 202)
    assert replayed.json()["id"] == accepted.json()["id"]
    assert replayed.headers["idempotent-replayed"] == "true"
    fresh = await submit(client, headers, QUICK, IMAGE, extra_headers={"Idempotency-Key": "8"})
    assert_quota_exceeded(fresh, "max_active_tasks_per_user", status=429, limit=1, usage=1)


async def test_concurrent_submissions_never_pass_the_active_task_quota(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.max_active_tasks_per_user = 3
    headers = await sign_up(client, "stampede@example.com")
    answers = await asyncio.gather(*(submit(client, headers, QUICK, IMAGE) for _ in range(8)))
    assert sorted(answer.status_code for answer in answers) == [202] * 3 + [429] * 5
    cost = next(answer for answer in answers if answer.status_code == 202).json()["cost"]
    debits = [
        entry for entry in await whole_ledger(client, headers) if entry["kind"] == "task_debit"
    ]
    assert len(debits) == 3
    assert await balance_of(client, headers) == 100 - 3 * cost
    assert len((await client.get("/v1/tasks", headers=headers)).json()["items"]) == 3
    assert _stored_sources(ctx) == 3


async def test_concurrent_retries_of_one_request_at_the_quota_all_get_its_task(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.max_active_tasks_per_user = 1
    headers = await sign_up(client, "double-click@example.com")
    key = {"Idempotency-Key": "same-click"}
    answers = await asyncio.gather(
        *(submit(client, headers, QUICK, IMAGE, extra_headers=key) for _ in range(6))
    )
    assert {answer.status_code for answer in answers} == {202}
    assert len({answer.json()["id"] for answer in answers}) == 1
