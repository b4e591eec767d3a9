"""The Celery application with PixelFleet's tasks: `celery -A pixelfleet.worker.celery_app worker`
(or `pixelfleet worker`) runs it, `... beat` (or `pixelfleet beat`) schedules the upkeep."""

from __future__ import annotations

from typing import Any

from celery.signals import setup_logging, worker_process_shutdown

from pixelfleet.observability.logging import configure_logging
from pixelfleet.settings import Settings
from pixelfleet.worker.celery_config import create_celery
from pixelfleet.worker.runtime import WorkerRuntime
from pixelfleet.worker.tasks import register_tasks


@setup_logging.connect
def _json_logs(**_: Any) -> None:
    """Celery's processes log JSON lines like every other part (Celery leaves logging alone
    when this signal has a receiver)."""
    configure_logging()


settings = Settings()
runtime = WorkerRuntime(lambda: settings)
app = create_celery(settings)
register_tasks(app, runtime)
celery_app = app


@worker_process_shutdown.connect
def _close_runtime(**_: Any) -> None:
    """A pool process that stops closes its database connections instead of dropping them."""
    runtime.close()
