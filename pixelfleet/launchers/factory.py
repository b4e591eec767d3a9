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
    from pixelfleet.launchers.celery import CeleryLauncher
    from pixelfleet.launchers.kubernetes import KubernetesLauncher
    from pixelfleet.operator.cluster import ImageJobs, load_api_client
    from pixelfleet.worker.celery_config import create_celery

    return KubernetesLauncher(
        ImageJobs(load_api_client(), settings.resolved_kubernetes_namespace),
        CeleryLauncher(create_celery(settings), settings.celery_queue),
        settings.imagejob_ttl_seconds,
    )
