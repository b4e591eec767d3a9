"""`GET /v1/usage`: an account's spend and work by day, API key or operation.

Specified here, through the API with the real worker code: credits spent are the gross task
debits and credits refunded the task refunds, each counted on the day the ledger wrote it, so
spent minus refunded over a range is the ledger's net task charges in that range; tasks,
source megapixels and output bytes count on the task's creation day; an operation's bucket
holds every task naming it, with the task's whole charge; the buckets of interactive logins
and of tasks without operations are keyed null; days without usage are zeros; another
account's tasks never count. The SQL differs between SQLite and PostgreSQL: both run it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.models import CreditEntry, Task
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import PASSWORD, image_bytes, sign_up, submit, truncated_jpeg, whole_ledger
from tests.records import stored_task

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

RESIZE_TO_WEBP = {"operations": [{"op": "resize", "width": 320}], "output": {"format": "webp"}}
ONLY_PNG = {"output": {"format": "png"}}
GRAY_VARIANTS = {
    "operations": [{"op": "grayscale"}],
    "variants": [
        {"name": "small", "operations": [{"op": "resize", "width": 100}]},
        {
            "name": "medium",
            "operations": [{"op": "resize", "width": 200}],
            "output": {"format": "auto"},
        },
    ],
}
PHOTO_MEGAPIXELS = 640 * 480 / 1_000_000


@dataclass
class Submitted:
    id: str
    cost: int


@dataclass
class TwoDays:
    """Four tasks of one account over two days, and the numbers to expect of them.

    First day: the login's task (resize, succeeded) and key A's (resize, failed: its refund is
    written on the second day). Second day: key B's (no operation, cancelled: refunded that
    day) and key A's (grayscale, then resize in two variants: succeeded)."""

    headers: dict[str, str]
    first_day: date
    second_day: date
    key_a: dict[str, Any]
    key_b: dict[str, Any]
    by_login: Submitted
    failing: Submitted
    cancelled: Submitted
    variants: Submitted
    login_bytes: int
    variants_bytes: int


async def _key(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/me/api-keys",
        headers=headers,
        json={"name": name, "scopes": ["tasks:write", "tasks:read", "credits:read"]},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


async def _submitted(
    client: httpx.AsyncClient, headers: dict[str, str], pipeline: Any, image: bytes
) -> Submitted:
    response = await submit(client, headers, pipeline, image)
    assert response.status_code == 202, response.text
    return Submitted(response.json()["id"], response.json()["cost"])


async def _move(ctx: ProcessContext, task_id: str, kind: str | None, at: datetime) -> None:
    """Dates the task's creation (`kind` None) or its ledger line of `kind` at `at`."""
    async with ctx.sessions.begin() as session:
        if kind is None:
            statement = update(Task).where(Task.id == uuid.UUID(task_id))
        else:
            statement = update(CreditEntry).where(
                CreditEntry.task_id == uuid.UUID(task_id), CreditEntry.kind == kind
            )
        await session.execute(statement.values(created_at=at))


async def _stored_bytes(ctx: ProcessContext, task_id: str) -> int:
    task = await stored_task(ctx, task_id)
    return sum(size for output in task.outputs for _, size in output.stored_files())


async def _two_days(client: httpx.AsyncClient, ctx: ProcessContext) -> TwoDays:
    headers = await sign_up(client, "ann@example.com")
    key_a, key_b = await _key(client, headers, "build server"), await _key(client, headers, "cms")
    photo = image_bytes("JPEG", (640, 480))
    by_login = await _submitted(client, headers, RESIZE_TO_WEBP, photo)
    failing = await _submitted(client, _bearer(key_a), RESIZE_TO_WEBP, truncated_jpeg())
    cancelled = await _submitted(client, _bearer(key_b), ONLY_PNG, photo)
    variants = await _submitted(client, _bearer(key_a), GRAY_VARIANTS, photo)
    cancel = await client.delete(f"/v1/tasks/{cancelled.id}", headers=_bearer(key_b))
    assert cancel.json()["status"] == "cancelled", cancel.text
    assert sorted(await drain_queue(ctx)) == ["failed", "succeeded", "succeeded"]

    # Two whole days before today, so the test means the same at any hour.
    first_day = utcnow().date() - timedelta(days=2)
    second_day = first_day + timedelta(days=1)
    first, second = (datetime.combine(day, time(10), UTC) for day in (first_day, second_day))
    dated = ((by_login, first), (failing, first), (cancelled, second), (variants, second))
    for task, created in dated:
        await _move(ctx, task.id, None, created)
        await _move(ctx, task.id, "task_debit", created)
    await _move(ctx, failing.id, "task_refund", second + timedelta(hours=1))
    await _move(ctx, cancelled.id, "task_refund", second + timedelta(hours=1))

    # Another account's task, on the same day: never anyone else's usage.
    other = await sign_up(client, "bob@example.com")
    stranger = await _submitted(client, other, RESIZE_TO_WEBP, photo)
    assert await drain_queue(ctx) == ["succeeded"]
    await _move(ctx, stranger.id, None, second)
    await _move(ctx, stranger.id, "task_debit", second)

    return TwoDays(
        headers,
        first_day,
        second_day,
        key_a,
        key_b,
        by_login,
        failing,
        cancelled,
        variants,
        login_bytes=await _stored_bytes(ctx, by_login.id),
        variants_bytes=await _stored_bytes(ctx, variants.id),
    )


async def _usage(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    response = await client.get("/v1/usage", headers=headers, params=params)
    assert response.status_code == 200, response.text
    buckets: list[dict[str, Any]] = response.json()["buckets"]
    return buckets


def _bucket(
    key: str | None,
    spent: int,
    refunded: int,
    *,
    succeeded: int = 0,
    failed: int = 0,
    cancelled: int = 0,
    tasks_in: int = 0,
    bytes_out: int = 0,
    name: str | None = None,
) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "credits_spent": spent,
        "credits_refunded": refunded,
        "tasks": {"succeeded": succeeded, "failed": failed, "cancelled": cancelled},
        "megapixels_in": pytest.approx(tasks_in * PHOTO_MEGAPIXELS),
        "bytes_out": bytes_out,
    }


async def _net_task_charges(
    client: httpx.AsyncClient, headers: dict[str, str], first_day: date, last_day: date
) -> int:
    """What the ledger (`GET /v1/credits`) took for tasks over those days, refunds deducted."""
    return -sum(
        entry["amount"]
        for entry in await whole_ledger(client, headers)
        if entry["kind"] in {"task_debit", "task_refund"}
        and first_day <= datetime.fromisoformat(entry["created_at"]).date() <= last_day
    )


def _net(buckets: list[dict[str, Any]]) -> int:
    return sum(bucket["credits_spent"] - bucket["credits_refunded"] for bucket in buckets)


async def test_by_day_each_day_of_the_range_has_its_spend_refunds_and_work(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    days = await _two_days(client, ctx)
    range_ = {"from": days.first_day.isoformat(), "to": days.second_day.isoformat()}

    buckets = await _usage(client, days.headers, group_by="day", **range_)

    assert buckets == [
        _bucket(
            days.first_day.isoformat(),
            days.by_login.cost + days.failing.cost,
            0,  # the failed task's refund came the next day
            succeeded=1,
            failed=1,
            tasks_in=2,  # the broken JPEG's header says 640 x 480 too
            bytes_out=days.login_bytes,
        ),
        _bucket(
            days.second_day.isoformat(),
            days.cancelled.cost + days.variants.cost,
            days.failing.cost + days.cancelled.cost,
            succeeded=1,
            cancelled=1,
            tasks_in=2,
            bytes_out=days.variants_bytes,
        ),
    ]
    assert _net(buckets) == await _net_task_charges(
        client, days.headers, days.first_day, days.second_day
    )


async def test_by_api_key_each_key_has_its_own_tasks_and_the_login_is_keyed_null(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    days = await _two_days(client, ctx)
    range_ = {"from": days.first_day.isoformat(), "to": days.second_day.isoformat()}

    buckets = await _usage(client, days.headers, group_by="api_key", **range_)

    key_a = _bucket(
        days.key_a["id"],
        days.failing.cost + days.variants.cost,
        days.failing.cost,
        succeeded=1,
        failed=1,
        tasks_in=2,
        bytes_out=days.variants_bytes,
        name="build server",
    )
    key_b = _bucket(
        days.key_b["id"],
        days.cancelled.cost,
        days.cancelled.cost,
        cancelled=1,
        tasks_in=1,
        name="cms",
    )
    login = _bucket(
        None, days.by_login.cost, 0, succeeded=1, tasks_in=1, bytes_out=days.login_bytes
    )
    by_spend = sorted([key_a, key_b, login], key=lambda bucket: -bucket["credits_spent"])
    assert sorted(buckets, key=lambda b: str(b["key"])) == sorted(
        by_spend, key=lambda b: str(b["key"])
    )
    spent = [bucket["credits_spent"] for bucket in buckets]
    assert spent == sorted(spent, reverse=True)
    assert _net(buckets) == await _net_task_charges(
        client, days.headers, days.first_day, days.second_day
    )


async def test_by_operation_a_task_counts_whole_in_each_operation_it_names(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    days = await _two_days(client, ctx)
    range_ = {"from": days.first_day.isoformat(), "to": days.second_day.isoformat()}

    buckets = await _usage(client, days.headers, group_by="operation", **range_)

    resize = _bucket(
        "resize",  # named by the login's task, the failed one, and twice by the variants'
        days.by_login.cost + days.failing.cost + days.variants.cost,
        days.failing.cost,
        succeeded=2,
        failed=1,
        tasks_in=3,
        bytes_out=days.login_bytes + days.variants_bytes,
    )
    grayscale = _bucket(
        "grayscale",
        days.variants.cost,
        0,
        succeeded=1,
        tasks_in=1,
        bytes_out=days.variants_bytes,
    )
    without_operations = _bucket(
        None, days.cancelled.cost, days.cancelled.cost, cancelled=1, tasks_in=1
    )
    assert buckets == [resize, grayscale, without_operations]


async def test_the_default_range_is_the_last_30_days_with_empty_days_as_zeros(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    days = await _two_days(client, ctx)

    buckets = await _usage(client, days.headers)

    today = utcnow().date()
    assert [bucket["key"] for bucket in buckets] == [
        (today - timedelta(days=back)).isoformat() for back in range(29, -1, -1)
    ]
    quiet = [b for b in buckets if b["key"] not in {str(days.first_day), str(days.second_day)}]
    assert all(bucket == _bucket(bucket["key"], 0, 0) for bucket in quiet)
    assert _net(buckets) == await _net_task_charges(
        client, days.headers, today - timedelta(days=29), today
    )
    # The other account sees its own task, and none of these.
    other = await client.post(
        "/v1/auth/token", data={"username": "bob@example.com", "password": PASSWORD}
    )
    theirs = await _usage(
        client,
        {"Authorization": f"Bearer {other.json()['access_token']}"},
        group_by="api_key",
    )
    assert [(bucket["key"], bucket["tasks"]["succeeded"]) for bucket in theirs] == [(None, 1)]
