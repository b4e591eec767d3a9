"""Task events on the Redis stream `pixelfleet:events` (capped, so it cannot grow without end)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from pixelfleet.events import EVENTS_STREAM, TaskEvent

log = logging.getLogger(__name__)


class RedisEventStream:
    def __init__(self, redis: Redis, max_length: int, stream: str = EVENTS_STREAM) -> None:
        self.redis = redis
        self.max_length = max_length
        self.stream = stream

    async def publish(self, event: TaskEvent) -> None:
        try:
            await self.redis.xadd(
                self.stream,
                event.to_fields(),  # type: ignore[arg-type]
                maxlen=self.max_length,
                approximate=True,
            )
        except (RedisError, OSError):
            log.warning("could not publish an event for task %s", event.task_id, exc_info=True)

    async def latest_id(self) -> str:
        """The id of the newest entry: read it before the database so `follow` misses nothing."""
        newest = cast(list[Any], await self.redis.xrevrange(self.stream, count=1))
        return _text(newest[0][0]) if newest else "0-0"

    async def follow(
        self, task_id: uuid.UUID, after: str, wait_seconds: float
    ) -> AsyncIterator[TaskEvent | None]:
        """Yields the task's events after the entry `after`, and None after each quiet wait."""
        last = after
        target = str(task_id)
        quiet_since = time.monotonic()
        while True:
            answer = cast(
                list[Any],
                await self.redis.xread(
                    {self.stream: last}, block=max(1, int(wait_seconds * 1000)), count=100
                ),
            )
            for _stream, entries in answer or []:
                for entry_id, raw in entries:
                    last = entry_id
                    fields = {_text(k): _text(v) for k, v in raw.items()}
                    if fields.get("task_id") == target:
                        quiet_since = time.monotonic()
                        yield TaskEvent.from_fields(fields)
            # Other tasks' events end a wait early; say "quiet" once per wait, not per batch.
            if time.monotonic() - quiet_since >= wait_seconds:
                quiet_since = time.monotonic()
                yield None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
