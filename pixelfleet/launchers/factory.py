"""Builds the launcher the settings name."""

from __future__ import annotations

from pixelfleet.launchers import EmbeddedLauncher, Launcher
from pixelfleet.settings import Settings


def create_launcher(settings: Settings) -> Launcher:
    if settings.launcher == "embedded":
        return EmbeddedLauncher()
    if settings.launcher == "celery":
        from pixelfleet.launchers.celery import CeleryLauncher
        from pixelfleet.worker.celery_config import create_celery

        return CeleryLauncher(create_celery(settings), settings.celery_queue)
    raise ValueError(
        f"PIXELFLEET_LAUNCHER={settings.launcher!r} is not available in this version: "
        "use 'embedded' or 'celery'"
    )
