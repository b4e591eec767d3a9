"""One embedded worker process started on its own (no `pixelfleet up` around it), and the
means to show that what reaches an API's watchers was pushed to them, not read on a timer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pixelfleet.api.routes import tasks as task_routes
from pixelfleet.context import ProcessContext

NEVER = 3600.0


@contextmanager
def worker_process(ctx: ProcessContext) -> Iterator[subprocess.Popen[bytes]]:
    """One embedded worker process on the context's database and files. It looks at the queue
    when it starts, then only once an hour: what it runs later, only a wake-up could start."""
    settings = ctx.settings
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIXELFLEET_")}
    env.update(
        {
            "PIXELFLEET_DATABASE_URL": settings.resolved_database_url,
            "PIXELFLEET_DATA_DIR": str(settings.data_dir.resolve()),
            "PIXELFLEET_JWT_SECRET": settings.jwt_signing_key,
            "PIXELFLEET_WORKER_POLL_SECONDS": str(NEVER),
            "PIXELFLEET_PASSWORD_HASHING": "cheapest",
        }
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pixelfleet.worker.embedded import worker_process_main; worker_process_main(0)",
        ],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def slow_stream_reads() -> Iterator[None]:
    """Event streams and long-polls read the record again only after an hour without an event:
    whatever they tell meanwhile was pushed to them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(task_routes, "EVENT_WAIT_SECONDS", NEVER)
        yield
