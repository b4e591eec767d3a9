"""Serving the metrics: one process's own, or (multiprocess mode) those of every process that
shares a metrics directory: the Celery pool's children, `pixelfleet up`'s workers.

Multiprocess mode is chosen by `PROMETHEUS_MULTIPROC_DIR` when prometheus_client is first
imported, so `use_directory` must run before anything imports `pixelfleet.observability.metrics`."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)

log = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST


def use_directory(directory: Path | None = None) -> Path:
    """Switches this process, and the processes it starts, to multiprocess mode on `directory`
    (the one already configured, else a new temporary one), emptied of an earlier run's files."""
    if "prometheus_client.values" in sys.modules and not os.environ.get(MULTIPROCESS_ENV):
        raise RuntimeError("multiprocess metrics must be set up before prometheus_client loads")
    configured = os.environ.get(MULTIPROCESS_ENV)
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


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's metrics in multiprocess mode, else this one's."""
    if not multiprocess_mode():
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
    return collected


def render() -> bytes:
    """The exposition text of `registry()`."""
    return generate_latest(registry())


def serve(port: int, what: str) -> Any:
    """Serves `registry()` on 0.0.0.0:`port` from a thread (nothing when the port is 0);
    returns the server, or None."""
    if port == 0:
        return None
    server, _thread = start_http_server(port, registry=registry())
    log.info("%s metrics on :%d/metrics", what, port)
    return server


def forget_process(pid: int) -> None:
    """A process that ended no longer counts in the live gauges (multiprocess mode)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
