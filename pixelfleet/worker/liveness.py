"""Whether a Celery worker is alive in the sense that matters: its consumer's event loop still
turns (it takes messages, acknowledges them, hears its pool). A timer on that loop beats every
few seconds (`ConsumerHeartbeat`); the main process's metrics server answers `/healthz` with 503
once the last beat is older than `PIXELFLEET_WORKER_LIVENESS_SECONDS`, so a kubelet restarts a
worker whose loop hangs, although its process (and that server's thread) still answers. A pool
process stuck in a task is the hard time limit's business, not this."""

from __future__ import annotations

import time
from typing import Any

from celery import bootsteps

BEAT_SECONDS_AT_MOST = 10.0

_last_beat = time.monotonic()  # a worker still connecting counts from its start


def beat() -> None:
    global _last_beat
    _last_beat = time.monotonic()


def trouble(liveness_seconds: float) -> str | None:
    """None while the loop beat within `liveness_seconds`, else what is wrong."""
    silent = time.monotonic() - _last_beat
    if silent <= liveness_seconds:
        return None
    return f"the worker's consumer loop has not turned for {silent:.0f} s"


def beat_interval(liveness_seconds: float) -> float:
    return max(0.1, min(BEAT_SECONDS_AT_MOST, liveness_seconds / 4))


def consumer_heartbeat(liveness_seconds: float) -> type[bootsteps.StartStopStep]:
    """The consumer bootstep that beats on the consumer's own timer, which its event loop
    fires (a loop that hangs, or runs a task inline, does not)."""
    interval = beat_interval(liveness_seconds)

    class ConsumerHeartbeat(bootsteps.StartStopStep):
        requires = ("celery.worker.consumer.tasks:Tasks",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.timer_entry: Any = None

        def start(self, parent: Any) -> None:
            beat()
            self.timer_entry = parent.timer.call_repeatedly(interval, beat)

        def stop(self, parent: Any) -> None:
            if self.timer_entry is not None:
                self.timer_entry.cancel()
                self.timer_entry = None

        shutdown = stop

    return ConsumerHeartbeat
