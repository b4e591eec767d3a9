"""The API process's event hub: each watcher gets its own task's events, every watcher of a
task gets each of them, and a hub keeps nothing once the watches end."""

from __future__ import annotations

import asyncio
import uuid

from pixelfleet.events import TaskEvent
from pixelfleet.events.hub import EventHub, TaskWatch

OWNER = uuid.uuid4()


def event(task_id: uuid.UUID, status: str = "running", progress: int = 10) -> TaskEvent:
    return TaskEvent(task_id=task_id, user_id=OWNER, status=status, progress=progress, stage="x")


async def taken(watch: TaskWatch, count: int) -> list[tuple[str, int]]:
    events = [await watch.next(5) for _ in range(count)]
    return [(e.status, e.progress) for e in events if e is not None]


async def test_every_watcher_of_a_task_gets_each_of_its_events_and_no_other_tasks() -> None:
    hub = EventHub()
    watched, other = uuid.uuid4(), uuid.uuid4()
    with hub.watch(watched) as first, hub.watch(watched) as second, hub.watch(other) as third:
        hub.deliver(event(watched, progress=10))
        hub.deliver(event(watched, "succeeded", 100))
        assert await taken(first, 2) == [("running", 10), ("succeeded", 100)]
        assert await taken(second, 2) == [("running", 10), ("succeeded", 100)]
        assert await third.next(0) is None


async def test_a_waiting_watcher_wakes_with_the_event_that_arrives() -> None:
    hub = EventHub()
    task_id = uuid.uuid4()
    with hub.watch(task_id) as watch:
        waiting = asyncio.create_task(watch.next(60))
        await asyncio.sleep(0)  # the watcher is waiting now
        hub.deliver(event(task_id, "cancelled", 0))
        arrived = await asyncio.wait_for(waiting, 30)
    assert arrived is not None
    assert arrived.status == "cancelled"


async def test_a_quiet_wait_ends_with_nothing() -> None:
    hub = EventHub()
    with hub.watch(uuid.uuid4()) as watch:
        assert await watch.next(0.01) is None


async def test_a_hub_keeps_nothing_once_the_watches_end() -> None:
    hub = EventHub()
    task_id = uuid.uuid4()

    async def watch_and_leave(index: int) -> None:
        watched = task_id if index % 2 else uuid.uuid4()
        with hub.watch(watched) as watch:
            await watch.next(0)

    await asyncio.gather(*(watch_and_leave(i) for i in range(100)))
    assert hub.watched_tasks == 0
    hub.deliver(event(task_id))  # nobody watches: nothing is kept for it
    assert hub.watched_tasks == 0


async def test_a_watch_ended_by_cancellation_is_forgotten() -> None:
    hub = EventHub()
    task_id = uuid.uuid4()

    async def watch_forever() -> None:
        with hub.watch(task_id) as watch:
            await watch.next(3600)

    watching = asyncio.create_task(watch_forever())
    await asyncio.sleep(0)
    assert hub.watched_tasks == 1
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)
    assert hub.watched_tasks == 0


async def test_a_watcher_that_falls_behind_keeps_the_newest_events() -> None:
    hub = EventHub()
    task_id = uuid.uuid4()
    with hub.watch(task_id) as watch:
        for percent in range(100):
            hub.deliver(event(task_id, progress=percent))
        hub.deliver(event(task_id, "succeeded", 100))
        kept = []
        while (next_event := await watch.next(0)) is not None:
            kept.append((next_event.status, next_event.progress))
    assert kept[-1] == ("succeeded", 100)
    assert len(kept) < 101
