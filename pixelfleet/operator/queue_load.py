"""Reads a Celery queue's load: the list's length, the messages Celery's Redis transport
delivered but has not seen acknowledged (kept aside in the `unacked` hash, for every queue),
and the tasks the database says are running, with the hosts (pods) running them."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, cast

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pixelfleet.autoscaling.policy import QueueLoad
from pixelfleet.jobs.states import RUNNING
from pixelfleet.models import Task
from pixelfleet.worker.names import CELERY_WORKER_PREFIX, host_of

UNACKED_HASH = "unacked"  # kombu's Redis transport default


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


async def busy_hosts(sessions: async_sessionmaker[AsyncSession]) -> Counter[str]:
    """How many tasks each worker host (pod) is running."""
    async with sessions() as session:
        rows = await session.execute(
            select(Task.worker, func.count())
            .where(Task.status == RUNNING, Task.worker.startswith(CELERY_WORKER_PREFIX))
            .group_by(Task.worker)
        )
    hosts: Counter[str] = Counter()
    for worker, count in rows.all():
        host = host_of(str(worker))
        if host is not None:
            hosts[host] += int(count)
    return hosts


async def queue_load(redis: Redis, queue: str, running: int) -> QueueLoad:
    waiting = int(await redis.llen(queue))
    return QueueLoad(
        waiting=waiting, reserved=await reserved_messages(redis, queue), running=running
    )
