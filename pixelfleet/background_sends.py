"""Sends made from this process in the background, right after the commit that made them due
(a task's webhooks, a letter): the caller does not wait for the other end. Best effort: each
kind's sweep sends whatever a background send misses, so a send never fails its caller."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

log = logging.getLogger(__name__)

# How long closing waits for the sends already under way.
CLOSE_GRACE_SECONDS = 10.0

Send = Callable[[uuid.UUID], Awaitable[int]]
"""Makes the due sends of one thing (a task's deliveries, a letter), returning how many."""


JITTER = 0.1


def backoff(base_seconds: float, attempts: int, cap_seconds: float) -> timedelta:
    """How long to wait after failed attempt number `attempts`: doubling from `base_seconds`,
    capped (at no less than the base), plus up to 10% jitter so that a receiver that failed
    is not hit by every sender in step."""
    delay = min(base_seconds * 2 ** (attempts - 1), max(base_seconds, cap_seconds))
    return timedelta(seconds=delay * (1 + random.uniform(0, JITTER)))  # noqa: S311 (not a secret)


class BackgroundSends:
    def __init__(self, send: Send, what: str) -> None:
        self._send = send
        self._what = what
        self._sending: set[asyncio.Task[int]] = set()

    def start(self, subject: uuid.UUID) -> None:
        sending = asyncio.create_task(self._run(subject))
        self._sending.add(sending)
        sending.add_done_callback(self._sent)

    async def _run(self, subject: uuid.UUID) -> int:
        return await self._send(subject)

    def _sent(self, sending: asyncio.Task[int]) -> None:
        self._sending.discard(sending)
        if not sending.cancelled() and sending.exception() is not None:
            failure = sending.exception()
            log.warning("%s: a send failed; the sweep will retry it", self._what, exc_info=failure)

    async def settle(self, within: float = CLOSE_GRACE_SECONDS) -> None:
        """Waits for the sends under way; those still going after `within` seconds are
        cancelled (their claim lapses and the sweep sends them again)."""
        if self._sending:
            _done, pending = await asyncio.wait(set(self._sending), timeout=within)
            for task in pending:
                task.cancel()
