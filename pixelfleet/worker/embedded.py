"""The embedded mode's worker and scheduler: separate processes that run the shared task code
against the database (the queue is the `tasks` table itself, so queued work survives restarts).

An idle worker sleeps until its doorbell rings (`launchers.doorbells`: a task was queued or
requeued), and looks at the queue only every `worker_poll_seconds` otherwise, in case a ring was
lost; it looks once as it starts, for what was queued while it was away. A busy worker hears
the same way that a running task was cancelled (`processing._until_released`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket

from pixelfleet.bootstrap import create_context, create_doorbell_listener
from pixelfleet.context import ProcessContext
from pixelfleet.jobs import fair_dispatch, maintenance
from pixelfleet.jobs.processing import Outcome, Settling, process_oldest_queued
from pixelfleet.launchers import DoorbellListener
from pixelfleet.launchers.doorbells import first_of
from pixelfleet.mail.outbox import send_due_mail
from pixelfleet.settings import Settings
from pixelfleet.webhooks.delivery import deliver_due

log = logging.getLogger(__name__)


def worker_prefix() -> str:
    """What the names of this machine's embedded workers start with."""
    return f"embedded@{socket.gethostname()}:"


def worker_name(index: int) -> str:
    return f"{worker_prefix()}{os.getpid()}:{index}"


async def drain_queue(ctx: ProcessContext, worker: str = "embedded-drain") -> list[Outcome]:
    """Runs queued tasks until none is left (used by `pixelfleet up --once` style callers)."""
    outcomes: list[Outcome] = []
    while (outcome := await process_oldest_queued(ctx, worker)) is not None:
        outcomes.append(outcome)
    return outcomes


async def run_worker(ctx: ProcessContext, worker: str, stop: asyncio.Event) -> None:
    """Runs queued tasks until `stop` is set; when the queue is empty, waits for its doorbell
    (`ctx.doorbell`) or the fallback look, whichever comes first. A run's result is settled
    while the next task runs (`Settling`); the last one before it stops, before it stops."""
    ctx.pipelines.warm()  # its pipeline process starts now, not with the first task
    doorbell = ctx.doorbell
    rung = doorbell.rung if doorbell is not None else asyncio.Event()
    settling = Settling(worker)
    log.info("worker %s started", worker)
    try:
        while not stop.is_set():
            # Cleared before the look: a ring that comes while it looks makes it look again.
            rung.clear()
            try:
                outcome = await process_oldest_queued(ctx, worker, settling)
            except Exception:
                log.exception("worker %s: unexpected error, backing off", worker)
                outcome = None
                await asyncio.sleep(1.0)
            if outcome is None:
                await _wait_for_work(doorbell, stop, rung, ctx.settings.worker_poll_seconds)
            elif outcome != "settling":
                log.info("worker %s: task finished as %s", worker, outcome)
    finally:
        await settling.finish()
    log.info("worker %s stopped", worker)


async def _wait_for_work(
    doorbell: DoorbellListener | None, stop: asyncio.Event, rung: asyncio.Event, within: float
) -> None:
    """Waits for a ring or the fallback look; only meanwhile is the worker idle (a ring heard
    at any other time is passed on to another worker)."""
    if doorbell is not None:
        doorbell.idle = True
    try:
        await first_of(stop, rung, within=within)
    finally:
        if doorbell is not None:
            doorbell.idle = False


async def run_scheduler(ctx: ProcessContext, stop: asyncio.Event) -> None:
    """Upkeep (and the mail that came due) every `scheduler_interval_seconds`; webhook retries
    every few seconds."""
    tick = min(ctx.settings.scheduler_interval_seconds, ctx.settings.webhook_sweep_seconds)
    upkeep_due = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            if loop.time() >= upkeep_due:
                upkeep_due = loop.time() + ctx.settings.scheduler_interval_seconds
                await maintenance.recover_stale_tasks(ctx)
                await maintenance.fail_overdue_tasks(ctx)
                # Tasks waiting their turn whose queue has room that no start will fill (the
                # tasks handed out were cancelled, or a release was lost).
                await fair_dispatch.release_everywhere(ctx)
                await maintenance.purge_expired_files(ctx)
                await maintenance.forget_expired_logins(ctx)
                await send_due_mail(ctx)
            await deliver_due(ctx)
        except Exception:
            log.exception("scheduled maintenance failed; will retry")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), tick)


def _stop_on_sigterm(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Ctrl-C reaches the whole process group; the parent decides, we finish the current task.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def _worker_main(index: int) -> None:
    stop = asyncio.Event()
    _stop_on_sigterm(stop)
    ctx = create_context(Settings())
    doorbell = create_doorbell_listener(ctx.settings, index)
    try:
        await doorbell.start()
        ctx.doorbell = doorbell
        await run_worker(ctx, worker_name(index), stop)
    finally:
        await doorbell.close()
        await ctx.close()


async def _scheduler_main() -> None:
    stop = asyncio.Event()
    _stop_on_sigterm(stop)
    ctx = create_context(Settings())
    try:
        await run_scheduler(ctx, stop)
    finally:
        await ctx.close()


def worker_process_main(index: int) -> None:
    """Entry point of one worker process (settings come from the environment)."""
    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    asyncio.run(_worker_main(index))


def scheduler_process_main() -> None:
    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    asyncio.run(_scheduler_main())
