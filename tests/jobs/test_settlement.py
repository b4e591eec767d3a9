"""Every end of a task is settled alike: a task failed by upkeep (its worker lost, or past its
hard time limit) announces its final event on the event stream once the failure commits, as a
worker's failure or a cancel does, so watchers (the API's event stream, the operator's ImageJob
status) hear of it at once rather than at the next resync. Against a real Redis server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from redis import Redis

from pixelfleet.context import ProcessContext
from pixelfleet.events import EVENTS_STREAM
from pixelfleet.jobs import maintenance
from pixelfleet.settings import Settings
from tests.api_helpers import sign_up, submit
from tests.celery_mode import conftest as celery_mode
from tests.harness.redis import RedisServer
from tests.records import claim_an_hour_ago

GRAYSCALE = {"operations": [{"op": "grayscale"}]}

# One Redis server for the module, as celery mode starts it.
redis_server = celery_mode.redis_server


@pytest.fixture
def settings(settings: Settings, redis_server: RedisServer) -> Settings:
    """The embedded launcher, with its events on Redis."""
    return settings.model_copy(update={"redis_url": redis_server.url})


@pytest.fixture
def stream(redis_server: RedisServer) -> Iterator[Redis]:
    broker = Redis.from_url(redis_server.url, decode_responses=True)
    broker.delete(EVENTS_STREAM)
    try:
        yield broker
    finally:
        broker.close()


def announced(stream: Redis, task_id: str) -> list[dict[str, str]]:
    return [fields for _id, fields in stream.xrange(EVENTS_STREAM) if fields["task_id"] == task_id]


async def test_a_task_failed_by_the_recovery_of_lost_workers_announces_its_end(
    client: httpx.AsyncClient, ctx: ProcessContext, stream: Redis
) -> None:
    headers = await sign_up(client, "lost@example.com")
    task_id = (await submit(client, headers, GRAYSCALE)).json()["id"]
    for attempt in range(ctx.settings.task_max_attempts):
        await claim_an_hour_ago(ctx, task_id, f"worker-{attempt}")
        assert await maintenance.recover_stale_tasks(ctx) == 1

    [final] = announced(stream, task_id)
    assert (final["status"], final["error_code"], final["stage"]) == (
        "failed",
        "worker-lost",
        "failed",
    )


async def test_a_task_failed_past_its_hard_time_limit_announces_its_end(
    client: httpx.AsyncClient, ctx: ProcessContext, stream: Redis
) -> None:
    headers = await sign_up(client, "overdue@example.com")
    task_id = (await submit(client, headers, GRAYSCALE)).json()["id"]
    await claim_an_hour_ago(ctx, task_id, "worker-that-hangs")

    assert await maintenance.fail_overdue_tasks(ctx) == 1

    [final] = announced(stream, task_id)
    assert (final["status"], final["error_code"], final["worker"]) == (
        "failed",
        "time-limit",
        "worker-that-hangs",
    )


async def test_a_task_requeued_by_the_recovery_announces_nothing_final(
    client: httpx.AsyncClient, ctx: ProcessContext, stream: Redis
) -> None:
    headers = await sign_up(client, "again@example.com")
    task_id = (await submit(client, headers, GRAYSCALE)).json()["id"]
    await claim_an_hour_ago(ctx, task_id, "worker-that-died")

    assert await maintenance.recover_stale_tasks(ctx) == 1

    assert announced(stream, task_id) == []


async def test_a_cancelled_task_announces_its_end_once_the_cancel_commits(
    client: httpx.AsyncClient, ctx: ProcessContext, stream: Redis
) -> None:
    headers = await sign_up(client, "quit@example.com")
    task_id = (await submit(client, headers, GRAYSCALE)).json()["id"]

    cancelled = await client.delete(f"/v1/tasks/{task_id}", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    again = await client.delete(f"/v1/tasks/{task_id}", headers=headers)
    assert again.status_code == 409, again.text

    [final] = announced(stream, task_id)
    assert (final["status"], final["stage"]) == ("cancelled", "cancelled")
