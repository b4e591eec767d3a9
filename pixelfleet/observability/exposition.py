"""Serving the metrics: one process's own, or (multiprocess mode) those of every process that
shares a metrics directory: the Celery pool's children, `pixelfleet up`'s workers.

Multiprocess mode is set up by `metrics_dir.use_directory`, before this module loads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    make_wsgi_app,
    multiprocess,
)
from prometheus_client.exposition import ThreadingWSGIServer

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


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None  # a scrape or a probe every few seconds is not worth a line


def _with_health(
    metrics: Callable[..., Iterable[bytes]], healthy: Callable[[], str | None]
) -> Callable[..., Iterable[bytes]]:
    """The metrics app, and `/healthz`: 200, or 503 with what `healthy` says is wrong."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            return metrics(environ, start_response)
        trouble = healthy()
        status = "200 OK" if trouble is None else "503 Service Unavailable"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [(trouble or "ok").encode("utf-8") + b"\n"]

    return app


def serve(
    port: int, what: str, healthy: Callable[[], str | None] | None = None
) -> WSGIServer | None:
    """Serves `registry()` on 0.0.0.0:`port`/metrics from a thread (nothing when the port is
    0), and with `healthy` a liveness probe at /healthz (`healthy` answers None, or what is
    wrong); returns the server, or None."""
    if port == 0:
        return None
    app = make_wsgi_app(registry())
    if healthy is not None:
        app = _with_health(app, healthy)
    # Every address: Prometheus scrapes, and the kubelet probes, the pod's own.
    server = make_server(
        "0.0.0.0", port, app, ThreadingWSGIServer, handler_class=_QuietHandler  # noqa: S104
    )
    threading.Thread(target=server.serve_forever, name=f"{what}-metrics", daemon=True).start()
    log.info("%s metrics on :%d/metrics", what, port)
    return server


def forget_process(pid: int) -> None:
    """A process that ended no longer counts in the live gauges (multiprocess mode)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
