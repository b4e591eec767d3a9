"""The one measurement of a Celery queue's backlog, shared by the API's `/metrics` and the
operator's autoscaler: the messages waiting in the queue's Redis lists, one per priority
(recorded in `pixelfleet_queue_backlog` whenever it is measured), and for the autoscaler
the messages Celery's Redis transport delivered but has not seen acknowledged (kept aside in
the `unacked` hash, for every queue)."""

from __future__ import annotations

import json
from typing import Any, cast

from redis.asyncio import Redis

from pixelfleet.autoscaling.policy import QueueLoad
from pixelfleet.observability.metrics import QUEUE_BACKLOG
from pixelfleet.worker.names import priority_lists

UNACKED_HASH = "unacked"  # kombu's Redis transport default


async def measure_backlog(redis: Redis, queue: str, held: int = 0) -> int:
    """The messages waiting in `queue` for a worker (not yet delivered to one), and the `held`
    tasks of the queue waiting their turn in the database (fair sharing), recorded as the
    queue's backlog."""
    async with redis.pipeline(transaction=False) as pipe:
        for key in priority_lists(queue):
            pipe.llen(key)
        lengths = await pipe.execute()
    waiting = sum(int(length) for length in lengths) + held
    QUEUE_BACKLOG.labels(queue=queue).set(waiting)
    return waiting


async def reserved_messages(redis: Redis, queue: str) -> int:
    """Unacknowledged deliveries whose routing key is `queue` (each entry is the JSON list
    [message, exchange, routing_key])."""
    count = 0
    for raw in cast(list[Any], await redis.hvals(UNACKED_HASH)):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, list) and len(entry) >= 3 and entry[2] == queue:
            count += 1
    return count


async def queue_load(redis: Redis, queue: str, running: int, held: int = 0) -> QueueLoad:
    """What the autoscaler weighs: the backlog (with the `held` tasks waiting their turn in
    the database), the reserved messages, and the `running` tasks the database counts on the
    pool's workers."""
    waiting = await measure_backlog(redis, queue, held)
    return QueueLoad(
        waiting=waiting, reserved=await reserved_messages(redis, queue), running=running
    )
