"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.formparsers import MultiPartParser
from starlette.types import Scope

from pixelfleet import row_security
from pixelfleet.api.body_limit import BodySizeLimit
from pixelfleet.api.http_metrics import HttpMetrics
from pixelfleet.api.problems import install_problem_handlers
from pixelfleet.api.request_context import PixelFleetAPI
from pixelfleet.api.request_text import KeepFormBody, refuse_unsafe_request_text
from pixelfleet.api.routes import (
    admin,
    api_docs,
    api_keys,
    assets,
    auth,
    console,
    health,
    images,
    me,
    metrics,
    operations,
    payments,
    presets,
    quotes,
    results,
    tasks,
    uploads,
    usage,
    webhooks,
)
from pixelfleet.bootstrap import create_context
from pixelfleet.context import ProcessContext
from pixelfleet.events.hub import EventHub
from pixelfleet.settings import Settings

DESCRIPTION = """PixelFleet turns uploaded images into processed ones, asynchronously, for credits.

Register, log in with the **Authorize** button (OAuth2 password flow: your email and password),
then `POST /v1/tasks` with an image and a pipeline. Errors are `application/problem+json`.
"""


# Multipart framing and the pipeline field, on top of the image itself.
MULTIPART_OVERHEAD = 1024 * 1024
JSON_BODY_LIMIT = 1024 * 1024
UPLOAD_PATHS = frozenset({"/v1/tasks", "/v1/quotes", "/v1/assets"})
"""Paths whose body carries an image (with the `/content` of each direct upload)."""


def _takes_an_image(path: str) -> bool:
    return path in UPLOAD_PATHS or (
        path.startswith("/v1/uploads/") and path.endswith("/content") and path.count("/") == 4
    )


def _keep_uploads_in_memory(limit: int) -> None:
    """Upload routes read the whole file into memory anyway (at most the body limit, enforced
    as it streams in), so Starlette's spooling of larger parts to a temporary file, one thread
    hop per chunk, would only add a write and a read of every byte."""
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, limit)


def create_app(settings: Settings | None = None, ctx: ProcessContext | None = None) -> FastAPI:
    owns_context = ctx is None
    configured = ctx.settings if ctx else settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = ctx or create_context(configured)
        app.state.ctx = context
        try:
            # Task events reach this process's hub at once; its streams and long-polls wait
            # on the hub (without a lifespan, as under a bare ASGI transport, they read the
            # database on each quiet wait instead).
            async with context.events.listening(app.state.event_hub.deliver):
                yield
        finally:
            if owns_context:
                await context.close()

    row_security.install()
    app = PixelFleetAPI(
        title="PixelFleet",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by `mount_api_docs`, with no CDN.
        docs_url=None,
        redoc_url=None,
        # Before every route's own dependencies: no text reaches them unchecked.
        dependencies=[Depends(refuse_unsafe_request_text)],
    )
    if ctx is not None:
        app.state.ctx = ctx
    app.state.event_hub = EventHub()
    install_problem_handlers(app)

    def body_limit(scope: Scope) -> int:
        if _takes_an_image(scope.get("path", "")):
            context: ProcessContext = app.state.ctx
            return context.settings.max_upload_bytes + MULTIPART_OVERHEAD
        return JSON_BODY_LIMIT

    app.add_middleware(KeepFormBody)  # inside the body limit: it keeps no more than that
    app.add_middleware(BodySizeLimit, limit_for=body_limit)
    app.add_middleware(HttpMetrics)  # outside the body limit: a 413 is timed too
    if configured.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=configured.cors_allow_origins,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "Content-Disposition"],
            max_age=600,
        )
    _keep_uploads_in_memory(configured.max_upload_bytes + MULTIPART_OVERHEAD)
    routers = (
        health,
        metrics,
        auth,
        me,
        api_keys,
        tasks,
        quotes,
        results,
        images,
        uploads,
        usage,
        webhooks,
        operations,
        presets,
        assets,
        payments,
        admin,
    )
    for module in routers:
        app.include_router(module.router)
    console.mount_console(app)
    api_docs.mount_api_docs(app)
    return app
