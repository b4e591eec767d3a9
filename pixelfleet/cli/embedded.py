"""`pixelfleet up`: the embedded mode, everything on one machine."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing import forkserver
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import IO

import click
import uvicorn

from pixelfleet.cli.configuration import load_settings
from pixelfleet.cli.schema import migrate_to_head
from pixelfleet.settings import MAX_EMBEDDED_WORKERS, Settings

log = logging.getLogger(__name__)

WORKER_STOP_SECONDS = 30.0


# What the worker and scheduler processes import, imported once in the fork server that makes
# them (seconds of CPU on a small machine, once per `up` rather than once per process).
FLEET_PRELOAD = ["pixelfleet.worker.embedded", "pixelfleet.observability.logging"]


class _Fleet:
    """The embedded mode's worker and scheduler processes, restarted if one dies.

    They are forked by a fork server, a fresh process started for them, with their modules
    imported (`FLEET_PRELOAD`): each starts at once, and none inherits this process's threads,
    event loop or connections (as with `spawn`)."""

    def __init__(self, workers: int) -> None:
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(FLEET_PRELOAD)
        # Started now, it imports while this process imports the API and migrates.
        forkserver.ensure_running()
        self.processes: dict[str, BaseProcess] = {}
        self.targets: dict[str, tuple[Callable[..., None], tuple[object, ...]]] = {}
        self.stopping = threading.Event()
        from pixelfleet.worker.embedded import scheduler_process_main, worker_process_main

        for index in range(workers):
            self.targets[f"worker-{index}"] = (worker_process_main, (index,))
        self.targets["scheduler"] = (scheduler_process_main, ())

    def _spawn(self, name: str) -> None:
        target, args = self.targets[name]
        process = self.context.Process(target=target, args=args, name=f"pixelfleet-{name}")
        process.start()
        self.processes[name] = process

    def start(self) -> None:
        for name in self.targets:
            self._spawn(name)
        threading.Thread(target=self._watch, name="fleet-watch", daemon=True).start()

    def _watch(self) -> None:
        from pixelfleet.observability import exposition

        while not self.stopping.wait(1.0):
            for name, process in list(self.processes.items()):
                if not process.is_alive() and not self.stopping.is_set():
                    log.warning("%s exited with %s; starting it again", name, process.exitcode)
                    if process.pid is not None:
                        exposition.forget_process(process.pid)
                    self._spawn(name)

    def stop(self) -> None:
        self.stopping.set()
        for process in self.processes.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            process.join(WORKER_STOP_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()


def _lock_data_dir(data_dir: Path) -> IO[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "pixelfleet.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        raise click.ClickException(
            f"another `pixelfleet up` is already running on {data_dir}"
        ) from exc
    return handle


async def _prepare_embedded(settings: Settings) -> int:
    from pixelfleet.bootstrap import create_context
    from pixelfleet.db import utcnow
    from pixelfleet.jobs.maintenance import recover_stale_tasks
    from pixelfleet.worker.embedded import worker_prefix

    await migrate_to_head(settings)
    ctx = create_context(settings)
    try:
        # Only one `up` runs on this data dir, so every task its workers were running was
        # interrupted (workers of other machines sharing the database are left alone).
        return await recover_stale_tasks(ctx, stale_before=utcnow(), worker_prefix=worker_prefix())
    finally:
        await ctx.close()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the database and files live (default: PIXELFLEET_DATA_DIR or ./.pixelfleet).",
)
@click.option(
    "--workers",
    type=click.IntRange(0, MAX_EMBEDDED_WORKERS),
    default=None,
    help="Worker processes (0: the API and the scheduler only; tasks wait in the queue).",
)
def up(host: str, port: int, data_dir: Path | None, workers: int | None) -> None:
    """Run everything on one machine: migrations, API, workers and scheduler."""
    from pixelfleet.observability import metrics_dir
    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    if data_dir is not None:
        os.environ["PIXELFLEET_DATA_DIR"] = str(data_dir.resolve())
    if workers is not None:
        os.environ["PIXELFLEET_EMBEDDED_WORKERS"] = str(workers)
    os.environ["PIXELFLEET_LAUNCHER"] = "embedded"
    settings = load_settings()
    lock = _lock_data_dir(settings.data_dir)
    # Before the metrics load: the API's /metrics reads every worker process's too.
    metrics_dir.use_directory(settings.data_dir.resolve() / "metrics")
    fleet = _Fleet(settings.embedded_workers)
    from pixelfleet.api.app import create_app

    recovered = asyncio.run(_prepare_embedded(settings))
    if recovered:
        log.info("requeued %d task(s) interrupted by the last shutdown", recovered)
    fleet.start()
    log.info(
        "PixelFleet is up on http://%s:%d (docs at /docs), data in %s",
        host,
        port,
        settings.data_dir.resolve(),
    )
    # uvicorn re-raises the signal that stopped it; let that return here so workers stop warm.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    try:
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            forwarded_allow_ips=settings.trusted_proxies,
        )
    finally:
        log.info("stopping workers (each finishes its current task)")
        fleet.stop()
        lock.close()
