"""Task events on the Redis stream `pixelfleet:events` (capped, so it cannot grow without end)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from pixelfleet.events import EVENTS_STREAM, EventReceiver, TaskEvent

log = logging.getLogger(__name__)

# Below the client's socket timeout; an idle reader asks again this often.
READ_BLOCK_MILLISECONDS = 5000
RETRY_SECONDS = 1.0


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
        """The id of the newest entry: where a reader starts so that it misses nothing after."""
        newest = cast(list[Any], await self.redis.xrevrange(self.stream, count=1))
        return _text(newest[0][0]) if newest else "0-0"

    @asynccontextmanager
    async def listening(self, deliver: EventReceiver) -> AsyncIterator[None]:
        """One reader of the stream for the whole process (not one per watcher)."""
        try:
            position = await self.latest_id()
        except (RedisError, OSError):
            log.warning("could not read the event stream's position", exc_info=True)
            position = "$"
        reader = asyncio.create_task(self._relay(position, deliver), name="event-stream-reader")
        try:
            yield
        finally:
            reader.cancel()
            # Bounded: a reader caught where the Redis client swallows its cancellation (on a
            # connection that a Redis restart broke) must not hold the process's shutdown.
            stopped, _ = await asyncio.wait({reader}, timeout=READ_BLOCK_MILLISECONDS / 1000)
            if not stopped:
                log.warning("the event stream's reader did not stop when asked; left behind")

    async def _relay(self, position: str, deliver: EventReceiver) -> None:
        while True:
            try:
                answer = cast(
                    list[Any],
                    await self.redis.xread(
                        {self.stream: position}, block=READ_BLOCK_MILLISECONDS, count=500
                    ),
                )
            except (RedisError, OSError):
                log.warning("could not read the event stream; trying again", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for _stream, entries in answer or []:
                for entry_id, raw in entries:
                    position = _text(entry_id)
                    try:
                        event = TaskEvent.from_fields({_text(k): _text(v) for k, v in raw.items()})
                    except (KeyError, ValueError):
                        log.warning("ignored a malformed event entry %s", position)
                        continue
                    deliver(event)

    async def close(self) -> None:
        return None  # the Redis client is the context's


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
