"""Mirrors task events into ImageJob status: the operator reads the Redis stream
`pixelfleet:events` in a consumer group, so events delivered before a restart but never
acknowledged are read again, and each is acknowledged only once it is applied."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections import OrderedDict
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from pixelfleet.events import EVENTS_STREAM, TaskEvent
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.operator.resources import imagejob_name
from pixelfleet.operator.state import OperatorState
from pixelfleet.operator.status import as_patch, status_of_task, status_patch_of_event

log = logging.getLogger(__name__)

CONSUMER_GROUP = "pixelfleet-operator"
BLOCK_MILLISECONDS = 2000
BATCH = 200
REMEMBERED_FINISHED = 10_000


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class EventFeed:
    def __init__(self, state: OperatorState, redis: Redis, consumer: str | None = None) -> None:
        self.state = state
        self.redis = redis
        self.consumer = consumer or socket.gethostname()
        # Tasks known to be finished: a late progress event must not turn them back to Running.
        self.finished: OrderedDict[uuid.UUID, None] = OrderedDict()

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(EVENTS_STREAM, CONSUMER_GROUP, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        await self.ensure_group()
        position = "0"  # first what this consumer was given before and never acknowledged
        while True:
            try:
                answer = cast(
                    list[Any],
                    await self.redis.xreadgroup(
                        CONSUMER_GROUP,
                        self.consumer,
                        {EVENTS_STREAM: position},
                        count=BATCH,
                        block=BLOCK_MILLISECONDS,
                    ),
                )
            except (RedisError, OSError):
                log.warning("event feed: Redis unavailable; retrying", exc_info=True)
                await asyncio.sleep(2)
                continue
            entries = answer[0][1] if answer else []
            if position == "0" and not entries:
                position = ">"
                continue
            for entry_id, raw in entries:
                await self.apply_entry(entry_id, raw)

    async def apply_entry(self, entry_id: bytes | str, raw: dict[Any, Any]) -> None:
        fields = {_text(k): _text(v) for k, v in raw.items()}
        try:
            event = TaskEvent.from_fields(fields)
        except (KeyError, ValueError):
            log.warning("event feed: dropping a malformed event %s", entry_id)
        else:
            try:
                await self.apply(event)
            except Exception:
                # Left unacknowledged: read again after a restart; the resync repairs meanwhile.
                log.warning("event feed: could not apply %s; leaving it", entry_id, exc_info=True)
                return
        await self.redis.xack(EVENTS_STREAM, CONSUMER_GROUP, entry_id)

    async def apply(self, event: TaskEvent) -> None:
        name = imagejob_name(str(event.task_id))
        jobs = self.state.jobs
        if event.status in ("succeeded", "failed", "cancelled"):
            async with self.state.ctx.read_sessions() as session:
                task = await TaskRepository.from_session(session).get(event.task_id)
            if task is None:
                return
            job = await jobs.get(name)
            if job is None:
                return
            generation = job.get("metadata", {}).get("generation")
            status = status_of_task(task, generation, job.get("status"))
            if await jobs.patch_status(name, as_patch(status)):
                self._remember_finished(event.task_id)
                if event.status == "succeeded":
                    await jobs.post_event(
                        job,
                        "Normal",
                        "Succeeded",
                        f"{len(status.outputs)} output(s) in {status.duration or '?'}",
                    )
                elif event.status == "failed":
                    await jobs.post_event(job, "Warning", "Failed", status.message or "failed")
            return
        if event.task_id in self.finished:
            return
        patched = await jobs.patch_status(name, status_patch_of_event(event))
        if patched and event.status == "running" and event.stage == "starting":
            job = await jobs.get(name)
            if job is not None:
                await jobs.post_event(
                    job,
                    "Normal",
                    "Started",
                    f"attempt {event.attempts} on {event.worker or 'a worker'}",
                )

    def _remember_finished(self, task_id: uuid.UUID) -> None:
        self.finished[task_id] = None
        while len(self.finished) > REMEMBERED_FINISHED:
            self.finished.popitem(last=False)
