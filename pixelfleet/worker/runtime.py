"""One event loop and one process context per worker process, made after the fork (engines
and connection pools must never cross a fork), reused by every task the process runs."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from pixelfleet.bootstrap import create_context
from pixelfleet.context import ProcessContext
from pixelfleet.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

T = TypeVar("T")


class WorkerRuntime:
    """`celery_app`: the worker's own app, which the context sends with (tasks re-dispatched,
    webhooks to deliver) instead of making a second one."""

    def __init__(
        self,
        settings_factory: Callable[[], Settings] = Settings,
        celery_app: Celery | None = None,
    ) -> None:
        self.settings_factory = settings_factory
        self.celery_app = celery_app
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ctx: ProcessContext | None = None

    def _ensure(self) -> tuple[asyncio.AbstractEventLoop, ProcessContext]:
        if self._pid != os.getpid() or self._loop is None or self._ctx is None:
            # Inherited from a parent (or never made): start afresh, never touch the parent's.
            self._loop = asyncio.new_event_loop()
            self._ctx = create_context(self.settings_factory(), celery_app=self.celery_app)
            self._pid = os.getpid()
        return self._loop, self._ctx

    def run(self, job: Callable[[ProcessContext], Awaitable[T]]) -> T:
        loop, ctx = self._ensure()
        return loop.run_until_complete(job(ctx))

    def close(self) -> None:
        if self._pid == os.getpid() and self._loop is not None and self._ctx is not None:
            self._loop.run_until_complete(self._ctx.close())
            self._loop.close()
        self._pid = self._loop = self._ctx = None
