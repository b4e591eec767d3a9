"""A task's server-sent events are pushed: with the stream's re-read of the record and the
worker's poll of the queue both an hour apart, the stream still follows a task that a separate
worker process runs to its end. On SQLite the worker's events come over a local socket; on
PostgreSQL, as notifications. Two streams of one task are both served by the one listener."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from pixelfleet.api.app import create_app
from pixelfleet.context import ProcessContext
from tests.api_helpers import events_of, sign_up, submit
from tests.harness.embedded_worker import slow_stream_reads, worker_process
from tests.harness.served import served

# Generous: a worker process starts (its pipeline process too) on a loaded machine.
FINISHES_WITHIN_SECONDS = 120.0

Event = tuple[str, dict[str, Any]]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
async def test_streams_of_a_task_follow_a_worker_process_to_done(ctx: ProcessContext) -> None:
    with slow_stream_reads():
        async with (
            served(create_app(ctx=ctx)) as url,
            httpx.AsyncClient(base_url=url, timeout=FINISHES_WITHIN_SECONDS) as http,
        ):
            headers = await sign_up(http, "pushed@example.com")
            task_id = (await submit(http, headers)).json()["id"]

            async def follow(opened: asyncio.Event) -> list[Event]:
                path = f"/v1/tasks/{task_id}/events"
                async with http.stream("GET", path, headers=headers) as stream:
                    events = events_of(stream)
                    seen = [await anext(events)]
                    opened.set()
                    seen += [event async for event in events]
                    return seen

            opened = [asyncio.Event(), asyncio.Event()]
            streams = [asyncio.create_task(follow(each)) for each in opened]
            await asyncio.wait_for(asyncio.gather(*(each.wait() for each in opened)), 30)
            with worker_process(ctx):
                followed = await asyncio.wait_for(
                    asyncio.gather(*streams), FINISHES_WITHIN_SECONDS
                )

    for events in followed:
        assert events[0][0] == "progress"
        assert events[0][1]["status"] == "queued"
        assert events[-1][0] == "done"
        assert events[-1][1]["status"] == "succeeded"
        assert events[-1][1]["progress"] == 100
        assert all(name == "progress" for name, _ in events[:-1])
