"""`GET /v1/tasks/{id}?wait=SECONDS` long-polls: it answers as soon as the task changes (or at
once if it is final), else after the wait with the task as it then stands; never more than 30 s,
and never for a task the caller cannot see."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from pixelfleet.api.app import create_app
from pixelfleet.context import ProcessContext
from pixelfleet.events.hub import EventHub, TaskWatch
from tests.api_helpers import PROBLEM, sign_up, submit
from tests.harness.embedded_worker import slow_stream_reads, worker_process
from tests.harness.served import served
from tests.jobs.test_event_stream_push import FINISHES_WITHIN_SECONDS

FINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def backend() -> str:
    """Long-polls are not a matter of database semantics: one backend (the carriers of each
    are checked in tests/jobs/test_event_stream_push.py and tests/events)."""
    return "sqlite"


class NoticingHub(EventHub):
    """The API's hub, which says when a watch (here: a long-poll) has begun."""

    def __init__(self) -> None:
        super().__init__()
        self.watching = asyncio.Event()

    @contextmanager
    def watch(self, task_id: uuid.UUID) -> Iterator[TaskWatch]:
        with super().watch(task_id) as watch:
            self.watching.set()
            yield watch


async def test_a_long_poll_answers_with_the_cancel_that_ends_the_task_meanwhile(
    ctx: ProcessContext,
) -> None:
    app = create_app(ctx=ctx)
    hub = app.state.event_hub = NoticingHub()
    with slow_stream_reads():
        async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
            headers = await sign_up(http, "waiter@example.com")
            task_id = (await submit(http, headers)).json()["id"]
            polling = asyncio.create_task(
                http.get(f"/v1/tasks/{task_id}", params={"wait": 30}, headers=headers)
            )
            await asyncio.wait_for(hub.watching.wait(), 30)  # the long-poll waits now
            cancel = await http.delete(f"/v1/tasks/{task_id}", headers=headers)
            assert cancel.status_code == 200
            answer = await asyncio.wait_for(polling, 30)
    assert answer.status_code == 200
    assert answer.json()["status"] == "cancelled"
    assert hub.watched_tasks == 0


async def test_long_polls_follow_a_worker_process_to_the_task_s_result(
    ctx: ProcessContext,
) -> None:
    answers: list[dict[str, Any]] = []
    with slow_stream_reads():
        async with (
            served(create_app(ctx=ctx)) as url,
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            headers = await sign_up(http, "patient@example.com")
            task = (await submit(http, headers)).json()

            async def poll_until_final() -> None:
                current = task
                while current["status"] not in FINAL:
                    response = await http.get(
                        f"/v1/tasks/{task['id']}", params={"wait": 30}, headers=headers
                    )
                    assert response.status_code == 200
                    answers.append(response.json())
                    current = answers[-1]

            with worker_process(ctx):
                await asyncio.wait_for(poll_until_final(), FINISHES_WITHIN_SECONDS)

    assert answers[-1]["status"] == "succeeded"
    assert answers[-1]["result"]["format"] == "jpeg"
    # Each answer brought news: a long-poll does not answer an unchanged task before its wait.
    states = [task, *answers]
    assert all(later != earlier for earlier, later in itertools.pairwise(states))


def long_polls_timed() -> float:
    labels = {"route": "/v1/tasks/{task_id}?wait", "method": "GET", "status": "200"}
    return REGISTRY.get_sample_value("pixelfleet_http_request_duration_seconds_count", labels) or 0


async def test_a_long_poll_on_a_task_that_stays_queued_answers_it_queued(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "queued@example.com")
    task_id = (await submit(client, headers)).json()["id"]
    timed_before = long_polls_timed()
    response = await client.get(f"/v1/tasks/{task_id}", params={"wait": 1}, headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    # Timed apart from plain reads, so that waiting by design raises no latency alert.
    assert long_polls_timed() == timed_before + 1


@pytest.mark.parametrize("wait", ["31", "-1", "soon"])
async def test_a_wait_outside_0_to_30_seconds_is_refused(
    client: httpx.AsyncClient, wait: str
) -> None:
    headers = await sign_up(client, "hasty@example.com")
    task_id = (await submit(client, headers)).json()["id"]
    response = await client.get(f"/v1/tasks/{task_id}", params={"wait": wait}, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["field"] == "wait"


async def test_a_long_poll_on_another_users_task_is_not_found_without_waiting(
    client: httpx.AsyncClient,
) -> None:
    owner = await sign_up(client, "owner@example.com")
    stranger = await sign_up(client, "stranger@example.com")
    task_id = (await submit(client, owner)).json()["id"]
    response = await asyncio.wait_for(
        client.get(f"/v1/tasks/{task_id}", params={"wait": 30}, headers=stranger), 15
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
