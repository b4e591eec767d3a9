"""A task's server-sent events are pushed: with the stream's re-read of the record and the
worker's poll of the queue both an hour apart, the stream still follows a task that a separate
worker process runs to its end. On SQLite the worker's events come over a local socket; on
PostgreSQL, as notifications. Two streams of one task are both served by the one listener, and
a stream its client drops leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from pixelfleet.api.app import create_app
from pixelfleet.context import ProcessContext
from pixelfleet.events.hub import EventHub, TaskWatch
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


class CountingHub(EventHub):
    """The API's hub, counting the watches that have begun and not ended."""

    def __init__(self) -> None:
        super().__init__()
        self.open = 0
        self.none_open = asyncio.Event()

    @contextmanager
    def watch(self, task_id: uuid.UUID) -> Iterator[TaskWatch]:
        self.open += 1
        self.none_open.clear()
        try:
            with super().watch(task_id) as watch:
                yield watch
        finally:
            self.open -= 1
            if self.open == 0:
                self.none_open.set()


async def test_streams_that_their_clients_drop_leave_nothing_watched(ctx: ProcessContext) -> None:
    app = create_app(ctx=ctx)
    hub = app.state.event_hub = CountingHub()
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        headers = await sign_up(http, "fickle@example.com")
        task_ids = [(await submit(http, headers)).json()["id"] for _ in range(3)]
        async with contextlib.AsyncExitStack() as streams:
            followed = []
            for task_id in [*task_ids, *task_ids]:
                stream = await streams.enter_async_context(
                    http.stream("GET", f"/v1/tasks/{task_id}/events", headers=headers)
                )
                followed.append(events_of(stream))
                assert (await anext(followed[-1]))[1]["status"] == "queued"
            assert hub.open == 6
            assert hub.watched_tasks == 3
        # The clients hung up on tasks that are still queued: the server lets go of each.
        await asyncio.wait_for(hub.none_open.wait(), 30)
        assert hub.watched_tasks == 0
