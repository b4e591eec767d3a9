"""The Celery application with PixelFleet's tasks: `celery -A pixelfleet.worker.celery_app worker`
(or `pixelfleet worker`) runs it, `... beat` (or `pixelfleet beat`) schedules the upkeep."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import setup_logging, worker_init, worker_process_shutdown

from pixelfleet.observability import exposition, known_series, metrics_dir
from pixelfleet.observability.logging import configure_logging
from pixelfleet.settings import Settings
from pixelfleet.worker import liveness
from pixelfleet.worker.celery_config import create_celery
from pixelfleet.worker.runtime import WorkerRuntime
from pixelfleet.worker.tasks import register_tasks


@setup_logging.connect
def _json_logs(**_: Any) -> None:
    """Celery's processes log JSON lines like every other part (Celery leaves logging alone
    when this signal has a receiver)."""
    configure_logging()


log = logging.getLogger(__name__)

settings = Settings()
app = create_celery(settings)
runtime = WorkerRuntime(lambda: settings, app)
register_tasks(app, runtime)
app.steps["consumer"].add(liveness.consumer_heartbeat(settings.worker_liveness_seconds))
celery_app = app


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """The worker's main process serves the metrics of all its pool processes (multiprocess
    mode: `pixelfleet worker` sets it up; with plain `celery worker`, set
    PROMETHEUS_MULTIPROC_DIR to an empty directory, or only the main process is seen), and
    its liveness at /healthz (`liveness.py`)."""
    if not metrics_dir.multiprocess_mode():
        log.warning("PROMETHEUS_MULTIPROC_DIR is not set: pool processes' metrics are not served")
    # A pool process makes its context, and so its known series, at its first task: the known
    # series are made here as well, so that the first scrape has them at 0 even before then
    # (a first task that gives a webhook up must read as an increase from 0).
    known_series.declare()
    exposition.serve(
        settings.worker_metrics_port,
        "worker",
        healthy=lambda: liveness.trouble(settings.worker_liveness_seconds),
    )


@worker_process_shutdown.connect
def _close_runtime(**_: Any) -> None:
    """A pool process that stops closes its database connections instead of dropping them."""
    runtime.close()
    exposition.forget_process(os.getpid())
