"""Multiprocess mode for the metrics: processes that share a directory (the Celery pool's
children, `pixelfleet up`'s workers) are scraped as one.

prometheus_client picks its mode from `PROMETHEUS_MULTIPROC_DIR` when it is first imported, so
this module imports nothing of it: `use_directory` runs before anything loads the metrics."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_directory(directory: Path | None = None) -> Path:
    """Switches this process, and the processes it starts, to multiprocess mode on `directory`
    (the one already configured, else a new temporary one), emptied of an earlier run's files."""
    configured = os.environ.get(MULTIPROCESS_ENV)
    if "prometheus_client.values" in sys.modules and not configured:
        raise RuntimeError("multiprocess metrics must be set up before prometheus_client loads")
    if directory is None:
        directory = (
            Path(configured) if configured else Path(tempfile.mkdtemp(prefix="pixelfleet-metrics-"))
        )
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROCESS_ENV] = str(directory)
    return directory


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROCESS_ENV))
