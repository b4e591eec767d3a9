"""The Celery adapter: sends the workers' messages through Redis: tasks to process (the dispatch
port; the Celery task id is the task's uuid) and webhooks to deliver (the webhook sender port,
on the control queue). Both share the process's one Celery app.

Each message carries the sender's request id and the task's user in its headers
(`log_context.MESSAGE_HEADERS`), so the worker's log lines name the request behind the work."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from celery import Celery
from kombu.exceptions import OperationalError

from pixelfleet.launchers import DispatchFailed
from pixelfleet.observability import log_context
from pixelfleet.worker.names import (
    DELIVER_WEBHOOKS,
    PROCESS_TASK,
    broker_priority,
    control_queue,
)

if TYPE_CHECKING:
    from pixelfleet.models import Task

log = logging.getLogger(__name__)


class CeleryLauncher:
    """`owns_app`: closing the launcher closes the app (not when the app is a worker's own)."""

    def __init__(self, app: Celery, queue: str, *, owns_app: bool = True) -> None:
        self.app = app
        self.queue = queue
        self.owns_app = owns_app

    def _send(
        self, task_id: uuid.UUID, headers: dict[str, str], queue: str, priority: int
    ) -> None:
        self.app.send_task(
            PROCESS_TASK,
            args=[str(task_id)],
            task_id=str(task_id),
            queue=queue,
            priority=broker_priority(priority),
            headers=headers,
        )

    async def dispatch(self, task: Task) -> None:
        await self.send(
            task.id, user_id=task.user_id, queue=task.queue, priority=task.priority or 0
        )

    async def held(self, task: Task) -> None:
        """Nothing to send until its turn comes."""
        return None

    async def requeued(self, task: Task) -> None:
        """Nothing to send: the message's retry (after its backoff) or its redelivery (its
        worker was lost) carries it again, and the re-dispatch job covers a lost message."""
        return None

    async def withdrawn(self, task: Task) -> None:
        """Nothing to send: its worker looks whether the task is still its own twice a
        second (`processing.HOLD_CHECK_SECONDS`)."""
        return None

    async def dropped(self, task: Task) -> None:
        """Revokes its message, so that Celery (`celery events`, Flower) records the task as
        revoked rather than run."""
        await self.revoke(task.id)

    async def erased(self, task_ids: Sequence[uuid.UUID]) -> None:
        """Nothing to forget: the messages of its unfinished tasks were revoked as they were
        cancelled, and a worker that claims one anyway finds no task."""
        return None

    async def send(
        self,
        task_id: uuid.UUID,
        *,
        user_id: uuid.UUID | None = None,
        queue: str | None = None,
        priority: int = 0,
    ) -> None:
        """Sends the Celery task for `task_id` to `queue` (None: this launcher's own) at
        `priority` (0-9, higher first), with the request id and user bound now (`user_id` names
        the user where it is known)."""
        headers = log_context.message_headers(user_id=user_id)
        try:
            # kombu publishes synchronously (and retries briefly when Redis is away).
            await asyncio.to_thread(
                self._send, task_id, headers, queue or self.queue, priority
            )
        except (OperationalError, OSError) as exc:
            raise DispatchFailed(f"the broker did not take task {task_id}: {exc}") from exc

    async def revoke(self, task_id: uuid.UUID) -> None:
        """Tells the workers to drop the task's message (best effort: a worker that claims it
        anyway finds it cancelled)."""
        try:
            await asyncio.to_thread(self.app.control.revoke, str(task_id))
        except Exception:
            log.warning("task %s: could not broadcast its revocation", task_id, exc_info=True)

    async def close(self) -> None:
        if self.owns_app:
            await asyncio.to_thread(self.app.close)


class CeleryWebhookSender:
    """Asks a worker to send the task's due webhooks (`pixelfleet.deliver_webhooks`)."""

    def __init__(self, app: Celery, queue: str) -> None:
        self.app = app
        self.queue = queue

    async def send_due(self, task_id: uuid.UUID) -> None:
        headers = log_context.message_headers()

        def send() -> None:
            self.app.send_task(
                DELIVER_WEBHOOKS,
                args=[str(task_id)],
                queue=control_queue(self.queue),
                headers=headers,
            )

        try:
            await asyncio.to_thread(send)
        except (OperationalError, OSError):
            log.warning("task %s: webhooks left to the next sweep", task_id, exc_info=True)

    async def close(self) -> None:
        return None  # the app is the launcher's, which closes it
