"""Serving the metrics: one process's own, or (multiprocess mode) those of every process that
shares a metrics directory: the Celery pool's children, `pixelfleet up`'s workers.

Multiprocess mode is set up by `metrics_dir.use_directory`, before this module loads."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)

from pixelfleet.observability.metrics_dir import multiprocess_mode

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST


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
