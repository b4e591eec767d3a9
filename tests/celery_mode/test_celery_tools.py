"""Celery's own tools see PixelFleet's work as PixelFleet does: a worker sends task events
without being asked (what `celery events` and Flower read), a task PixelFleet failed is a
Celery failure, not a success, and a cancelled one is a failure (cancelled while it ran) or
revoked (cancelled before it started)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pixelfleet.settings import Settings
from pixelfleet.worker.celery_config import create_celery
from pixelfleet.worker.names import PROCESS_TASK
from tests.api_helpers import image_bytes, noise_png, sign_up, submit, truncated_jpeg
from tests.celery_mode.conftest import Processes, eventually, wait_for_status

pytestmark = pytest.mark.celery

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
THUMBNAIL = {"operations": [{"op": "thumbnail", "width": 64, "height": 64}]}


class Events:
    """Every Celery event on the broker, received as `celery events` receives them."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_celery(settings)
        self.seen: list[dict[str, Any]] = []
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    def _receive(self) -> None:
        with self.app.connection_for_read() as connection:
            receiver = self.app.events.Receiver(connection, handlers={"*": self.seen.append})
            while not self._stop.is_set():
                self.listening.set()
                try:
                    receiver.capture(limit=None, timeout=0.5, wakeup=False)
                except TimeoutError:
                    continue

    def __enter__(self) -> Events:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def ends(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """How each PixelFleet task's Celery task ended, by PixelFleet task id: the type of its
        last `task-succeeded` or `task-failed` event, and that event."""
        ids = {
            event["uuid"]: match.group(0)
            for event in self.seen
            if event["type"] == "task-received" and event.get("name") == PROCESS_TASK
            # The arguments come as their repr: the task id is the one UUID in it.
            and (match := UUID.search(str(event.get("args")))) is not None
        }
        return {
            ids[event["uuid"]]: (event["type"], event)
            for event in self.seen
            if event["type"] in {"task-succeeded", "task-failed"} and event["uuid"] in ids
        }

    def types_of(self, celery_task_id: str) -> list[str]:
        return [event["type"] for event in self.seen if event.get("uuid") == celery_task_id]


@pytest.fixture
def events(processes: Processes) -> Iterator[Events]:
    with Events(processes.settings) as receiving:
        yield receiving


async def test_celery_s_events_tell_a_success_from_a_failure_as_pixelfleet_does(
    client: httpx.AsyncClient, processes: Processes, events: Events
) -> None:
    assert await asyncio.to_thread(events.listening.wait, 10)
    worker = processes.worker()
    headers = await sign_up(client, "celery-events@example.com")
    good = (await submit(client, headers, THUMBNAIL, image_bytes(size=(320, 240)))).json()
    bad = (await submit(client, headers, THUMBNAIL, truncated_jpeg())).json()
    await wait_for_status(client, headers, good["id"], {"succeeded"})
    await wait_for_status(client, headers, bad["id"], {"failed"})

    async def both_ended() -> dict[str, tuple[str, dict[str, Any]]]:
        for _ in range(100):
            ends = events.ends()
            if {good["id"], bad["id"]} <= ends.keys():
                return ends
            await asyncio.sleep(0.1)
        raise AssertionError(f"events seen: {[event['type'] for event in events.seen]}")

    ends = await both_ended()
    assert ends[good["id"]][0] == "task-succeeded"
    kind, failure = ends[bad["id"]]
    assert kind == "task-failed"
    assert "TaskFailed" in failure["exception"]
    seen = {event["type"] for event in events.seen}
    assert {"task-sent", "task-received", "task-started"} <= seen
    # An expected failure: Celery logs it at info ("raised expected"), never as an error.
    lines = [json.loads(line) for line in worker.output.splitlines() if line.startswith("{")]
    traced = [line for line in lines if line["logger"] == "celery.app.trace"]
    assert [line["level"] for line in traced if "raised" in line["event"]] == ["info"]
    assert "error" not in {line["level"] for line in lines}


# Seconds of one core's work (an AVIF encode of noise): the worker is busy while others queue.
SLOW = {"output": {"format": "avif", "quality": 90}}


async def test_a_cancelled_task_is_revoked_before_it_starts_and_failed_while_it_runs(
    client: httpx.AsyncClient, processes: Processes, events: Events
) -> None:
    assert await asyncio.to_thread(events.listening.wait, 10)
    processes.worker(concurrency=1)
    headers = await sign_up(client, "celery-cancels@example.com")
    running = (await submit(client, headers, SLOW, noise_png((2000, 1500)))).json()["id"]

    async def encoding() -> bool:
        task = (await client.get(f"/v1/tasks/{running}", headers=headers)).json()
        return bool(task["stage"] == "encoding")

    await eventually(encoding, within=60, interval=0.05)
    queued = (await submit(client, headers, THUMBNAIL, image_bytes())).json()["id"]
    for task_id in (queued, running):
        cancelled = await client.delete(f"/v1/tasks/{task_id}", headers=headers)
        assert cancelled.json()["status"] == "cancelled", cancelled.text

    async def both_ended() -> bool:
        return "task-revoked" in events.types_of(queued) and "task-failed" in events.types_of(
            running
        )

    await eventually(both_ended, within=30, interval=0.1)
    assert "task-started" not in events.types_of(queued)
    [failure] = [e for e in events.seen if e["type"] == "task-failed" and e["uuid"] == running]
    assert "TaskDiscarded" in failure["exception"]
