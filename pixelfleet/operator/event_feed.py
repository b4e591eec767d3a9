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
from pixelfleet.models import Task
from pixelfleet.operator.creditbindings import refresh_spend
from pixelfleet.operator.resources import imagejob_name, imagejob_of
from pixelfleet.operator.state import OperatorState
from pixelfleet.operator.status import as_patch, status_of_task, status_patch_of_event

log = logging.getLogger(__name__)

CONSUMER_GROUP = "pixelfleet-operator"
BLOCK_MILLISECONDS = 2000
BATCH = 200
REMEMBERED = 10_000
JobRef = tuple[str | None, str]
"""An ImageJob's namespace (None: PixelFleet's own) and name."""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class EventFeed:
    def __init__(self, state: OperatorState, redis: Redis, consumer: str | None = None) -> None:
        self.state = state
        self.redis = redis
        self.consumer = consumer or socket.gethostname()
        # Tasks known to be finished: a late progress event must not turn them back to Running.
        self.finished: OrderedDict[uuid.UUID, None] = OrderedDict()
        # Where the ImageJobs applied by hand are, by their tasks.
        self.applied_by_hand: OrderedDict[uuid.UUID, JobRef] = OrderedDict()

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

    async def _task(self, task_id: uuid.UUID) -> Task | None:
        async with self.state.ctx.read_sessions() as session:
            return await TaskRepository.from_session(session).get(task_id)

    async def _patch_progress(self, task_id: uuid.UUID, patch: dict[str, Any]) -> JobRef | None:
        """Patches the task's ImageJob: PixelFleet's `task-<id>`, else (that one is not there)
        the job applied by hand that asked for the task, found once in its record."""
        jobs = self.state.jobs
        ref = self.applied_by_hand.get(task_id)
        if ref is None:
            name = imagejob_name(str(task_id))
            if await jobs.patch_status(name, patch):
                return None, name
            task = await self._task(task_id)
            if task is None or task.resource_name is None:
                return None
            ref = imagejob_of(task.id, task.resource_name)
            self._remember(self.applied_by_hand, task_id, ref)
        namespace, name = ref
        return ref if await jobs.patch_status(name, patch, namespace) else None

    async def apply(self, event: TaskEvent) -> None:
        jobs = self.state.jobs
        if event.status in ("succeeded", "failed", "cancelled"):
            task = await self._task(event.task_id)
            if task is None:
                return
            namespace, name = imagejob_of(task.id, task.resource_name)
            job = await jobs.get(name, namespace)
            if job is None:
                return
            generation = job.get("metadata", {}).get("generation")
            status = status_of_task(
                task, generation, job.get("status"), self.state.ctx.result_urls
            )
            if task.budget is not None:
                await refresh_spend(self.state, task.budget)  # a refund lowers the spend
            if await jobs.patch_status(name, as_patch(status), namespace):
                self._remember(self.finished, event.task_id, None)
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
        patched = await self._patch_progress(event.task_id, status_patch_of_event(event))
        if patched and event.status == "running" and event.stage == "starting":
            job = await jobs.get(patched[1], patched[0])
            if job is not None:
                await jobs.post_event(
                    job,
                    "Normal",
                    "Started",
                    f"attempt {event.attempts} on {event.worker or 'a worker'}",
                )

    @staticmethod
    def _remember(memory: OrderedDict[uuid.UUID, Any], task_id: uuid.UUID, value: Any) -> None:
        memory[task_id] = value
        while len(memory) > REMEMBERED:
            memory.popitem(last=False)
