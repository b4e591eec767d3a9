"""What the observability layer costs a request: the request id (`RequestContext`: read or made,
bound to the log context, sent back) and the HTTP timing histogram (`HttpMetrics`), on the
cheapest request there is (a route that returns a constant). Both variants write one JSON
access-log line (with the redaction of secrets) per request, as the API does.

Baseline: the route and its access line alone, in the same process and run. Ours: the route with
the two layers, as `create_app` stacks them. Each variant answers the same requests, called directly
through ASGI (no sockets), on one core; the best of several rounds is kept.

    python3 -m uv run --locked --group bench python bench/observability_overhead.py \
        [--requests N] [--quick]

Prints a table, then `ratio NAME VALUE` lines (ours / baseline requests per second: 1.0 means
the layer costs nothing; a real request, which reads the database, spends far more than this
route and loses a smaller share).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelfleet.api.http_metrics import HttpMetrics
from pixelfleet.api.request_context import RequestContext
from pixelfleet.observability.logging import JsonFormatter

ROUNDS = 5


async def _constant(_request: Any) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _routes() -> Starlette:
    return Starlette(routes=[Route("/v1/things/{thing_id}", _constant)])


class _AccessLog:
    """One access line per request, through the JSON formatter (as uvicorn's access log is)."""

    def __init__(self, app: ASGIApp, logger: logging.Logger) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        self.logger.info(
            '%s - "%s %s HTTP/1.1" %d', "127.0.0.1:5000", scope["method"], scope["path"], 200
        )


def _logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def _bare() -> ASGIApp:
    return _AccessLog(_routes(), _logger("bench.bare"))


def _instrumented() -> ASGIApp:
    # As create_app stacks them: the request context outermost, then the timing, then the app.
    return RequestContext(HttpMetrics(_AccessLog(_routes(), _logger("bench.instrumented"))))


async def _run(app: ASGIApp, requests: int) -> float:
    headers = [(b"authorization", b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")]

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Message) -> None:
        return None

    started = time.perf_counter()
    for index in range(requests):
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": f"/v1/things/{index}",
            "raw_path": f"/v1/things/{index}".encode(),
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        await app(scope, receive, send)
    return time.perf_counter() - started


def _best(run: Callable[[], Awaitable[float]]) -> float:
    return min(asyncio.run(run()) for _ in range(ROUNDS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="200 requests: a check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.requests = 200
    bare, instrumented = _bare(), _instrumented()
    asyncio.run(_run(bare, 200))  # warm up both
    asyncio.run(_run(instrumented, 200))
    bare_seconds = _best(lambda: _run(bare, args.requests))
    ours_seconds = _best(lambda: _run(instrumented, args.requests))

    print(f"{args.requests} requests to a constant route, best of {ROUNDS} rounds, one core")
    print(f"{'variant':<44}{'req/s':>10}{'us/req':>10}")
    for name, seconds in (
        ("bare route + access log (baseline)", bare_seconds),
        ("+ request id and HTTP histogram", ours_seconds),
    ):
        print(f"{name:<44}{args.requests / seconds:>10.0f}{seconds / args.requests * 1e6:>10.1f}")
    added = (ours_seconds - bare_seconds) / args.requests * 1e6
    print(f"{'cost of the observability layer':<44}{'':>10}{added:>10.1f}")
    print(f"ratio instrumented_vs_bare {bare_seconds / ours_seconds:.3f}")


if __name__ == "__main__":
    main()
