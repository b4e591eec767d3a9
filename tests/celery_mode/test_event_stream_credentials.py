"""In celery mode a task's event stream is fed by the API process's one reader of the Redis
stream, waking at each event or after a quiet second; it ends with its credential all the same
(tests/jobs covers the embedded mode)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pixelfleet.api.app import create_app
from pixelfleet.context import ProcessContext
from tests.admin.steps import id_of, sign_up_admin
from tests.api_helpers import sign_up, submit
from tests.celery_mode.conftest import Processes
from tests.harness.embedded_worker import slow_stream_reads
from tests.harness.served import served
from tests.jobs.test_event_stream_credentials import assert_ended_by, events_after, new_key

pytestmark = pytest.mark.celery


async def test_revoking_an_api_key_ends_a_stream_fed_by_redis(ctx: ProcessContext) -> None:
    async with (
        served(create_app(ctx=ctx)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        owner = await sign_up(http, "keys@example.com")
        task_id = (await submit(http, owner)).json()["id"]
        key_id, key = await new_key(http, owner)

        async def revoke() -> None:
            response = await http.delete(f"/v1/me/api-keys/{key_id}", headers=owner)
            assert response.status_code == 204

        assert_ended_by(await events_after(http, key, task_id, revoke), "invalid-token", task_id)


async def test_a_stream_whose_key_still_works_follows_its_task_to_the_end(
    ctx: ProcessContext, processes: Processes
) -> None:
    """Checked again and again while the worker starts (under row-level security on
    PostgreSQL, as the API's role for the key's owner), a working key keeps its stream."""
    async with (
        served(create_app(ctx=ctx)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        owner = await sign_up(http, "works@example.com")
        task_id = (await submit(http, owner)).json()["id"]
        _key_id, key = await new_key(http, owner)

        async def start_a_worker() -> None:
            await asyncio.to_thread(processes.worker)  # the stream is served meanwhile

        events = await events_after(http, key, task_id, start_a_worker, within=60)
        assert "error" not in [name for name, _ in events]
        assert events[-1][0] == "done"
        assert events[-1][1]["status"] == "succeeded"


async def test_a_stream_is_pushed_its_task_s_events_by_the_one_redis_reader(
    ctx: ProcessContext, processes: Processes
) -> None:
    """With the stream's own re-read of the record an hour apart, only the API process's
    reader of the Redis stream can bring the worker's progress and end."""
    with slow_stream_reads():
        async with (
            served(create_app(ctx=ctx)) as url,
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            owner = await sign_up(http, "pushed@example.com")
            task_id = (await submit(http, owner)).json()["id"]

            async def start_a_worker() -> None:
                await asyncio.to_thread(processes.worker)

            events = await events_after(http, owner, task_id, start_a_worker, within=90)
    assert events[-1][0] == "done"
    assert events[-1][1]["status"] == "succeeded"
    assert all(name == "progress" for name, _ in events[:-1])


async def test_a_deactivation_ends_a_stream_fed_by_redis_even_after_a_reactivation(
    ctx: ProcessContext,
) -> None:
    async with (
        served(create_app(ctx=ctx)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        admin = await sign_up_admin(http, ctx)
        user = await sign_up(http, "back@example.com")
        user_id = await id_of(http, user)
        task_id = (await submit(http, user)).json()["id"]

        async def deactivate_and_reactivate() -> None:
            for change in ("deactivate", "reactivate"):
                response = await http.post(
                    f"/v1/admin/users/{user_id}/{change}", headers=admin, json={"reason": "test"}
                )
                assert response.status_code == 200

        events = await events_after(http, user, task_id, deactivate_and_reactivate)
        assert_ended_by(events, "invalid-token", task_id)
