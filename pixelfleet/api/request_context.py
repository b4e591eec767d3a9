"""Each request gets an id: the client's `X-Request-ID` when it is safe to log, else a new one.
It is bound to the request's log context (so every line logged while the request runs carries
it, uvicorn's access line too) and sent back in the `X-Request-ID` header of every response.

The caller's `user_id` and the `task_id` are bound later, by the dependency that resolves the
caller and by the task routes, for the rest of the same request: both run in the request's own
asyncio task, the one this middleware runs in, and `log_context.scope` undoes them at its end."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelfleet import row_security
from pixelfleet.api.client_generation import document_file_fields, operation_id
from pixelfleet.api.openapi_examples import document_examples, document_models
from pixelfleet.api.problems import document_problems
from pixelfleet.api.submissions import SUBMISSION_MODELS
from pixelfleet.jobs.schemas import ProgressEvent
from pixelfleet.observability import log_context
from pixelfleet.observability.log_context import REQUEST_ID_HEADER

_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")


def request_id_of(scope: Scope) -> str:
    """The request's id: the client's, if acceptable, or a new one."""
    for name, value in scope.get("headers", ()):
        if name == _HEADER_KEY:
            return log_context.acceptable_request_id(value.decode("latin-1")) or (
                log_context.new_request_id()
            )
    return log_context.new_request_id()


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with log_context.scope(request_id=request_id), row_security.scope():
            await self.app(scope, receive, send_with_request_id)


_DOCUMENTED_HEADER = {
    "description": "The request's id: the client's own `X-Request-ID` if it is 1 to 128 "
    "characters of `A-Za-z0-9._:/+=-`, else one the server made. Log lines and the task's "
    "worker carry it.",
    "schema": {"type": "string"},
}


class PixelFleetAPI(FastAPI):
    """FastAPI with `RequestContext` outside everything, Starlette's error middleware
    included: `add_middleware` layers sit inside that one, and then a 500's log line and
    response would lose the request id. The OpenAPI document lists the header on every
    response, and every error as a problem document; its operations are named for clients
    generated from it (`pixelfleet.api.client_generation`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("generate_unique_id_function", operation_id)
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return RequestContext(super().build_middleware_stack())

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is not None:
            return self.openapi_schema
        schema = super().openapi()
        # The data of the task event stream's events, which FastAPI does not see.
        document_models(schema, (*SUBMISSION_MODELS, ProgressEvent))
        document_file_fields(schema)
        document_problems(schema)
        document_examples(schema)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for response in operation.get("responses", {}).values():
                    response.setdefault("headers", {})[REQUEST_ID_HEADER] = _DOCUMENTED_HEADER
        return schema
