"""The Celery application with PixelFleet's tasks: `celery -A pixelfleet.worker.celery_app worker`
(or `pixelfleet worker`) runs it, `... beat` (or `pixelfleet beat`) schedules the upkeep."""

from __future__ import annotations

from pixelfleet.settings import Settings
from pixelfleet.worker.celery_config import create_celery
from pixelfleet.worker.runtime import WorkerRuntime
from pixelfleet.worker.tasks import register_tasks

settings = Settings()
runtime = WorkerRuntime(lambda: settings)
app = create_celery(settings)
register_tasks(app, runtime)
celery_app = app
