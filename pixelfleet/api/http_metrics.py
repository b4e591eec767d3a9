"""Times every HTTP request into `pixelfleet_http_request_duration_seconds`, labelled by the
route's template (`/v1/tasks/{task_id}`, never the id itself), the method and the status code,
so that the number of series stays bounded whatever clients send."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelfleet.observability.metrics import HTTP_REQUEST_SECONDS, UNMATCHED_ROUTE

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# A handler may name its request's kind more precisely than its route's template (a long-poll:
# `/v1/tasks/{task_id}?wait`), so that a dashboard can tell waits from answers.
ROUTE_LABEL_KEY = "pixelfleet.route_label"


def route_of(scope: Scope) -> str:
    """The template of the route that handled the request (set in the scope by routing)."""
    if label := scope.get(ROUTE_LABEL_KEY):
        return str(label)
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED_ROUTE


@lru_cache(maxsize=4096)
def _series(route: str, method: str, status: str) -> Any:
    """The histogram's child for these labels, looked up once (the label sets are bounded)."""
    return HTTP_REQUEST_SECONDS.labels(route=route, method=method, status=status)


class HttpMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = str(scope.get("method", "")).upper()
            _series(route_of(scope), method if method in METHODS else "other", str(status)).observe(
                time.perf_counter() - started
            )
