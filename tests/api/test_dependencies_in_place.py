"""Every dependency of every route is async, so FastAPI calls it in the request's own task:
a plain `def` dependency runs in the thread pool, a hop to a thread and back (and a context
copy) on every request that uses it, which on a status poll costs as much as its query."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from pixelfleet.api.app import create_app
from pixelfleet.context import ProcessContext


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


# The login's form, a class FastAPI instantiates in the thread pool: one hop per login, beside
# a password hash that costs far more, and the form OAuth2 clients and the docs know.
IN_THREADS_ALLOWED = {"/v1/auth/token: OAuth2PasswordRequestForm"}


def _runs_in_place(call: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    method = getattr(call, "__call__", None)  # noqa: B004 (an instance used as a dependency)
    return not inspect.isfunction(call) and (
        inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)
    )


def test_no_dependency_runs_in_the_thread_pool(ctx: ProcessContext) -> None:
    app = create_app(ctx=ctx)
    routes = [
        context.route
        for context in iter_route_contexts(app.routes)  # through the included routers
        if isinstance(context.route, APIRoute)
    ]
    assert any(route.path == "/v1/tasks/{task_id}" for route in routes)
    in_threads = {
        f"{route.path}: {getattr(call, '__qualname__', repr(call))}"
        for route in routes
        for call in _calls(route.dependant)
        if not _runs_in_place(call)
    }
    assert in_threads <= IN_THREADS_ALLOWED, sorted(in_threads - IN_THREADS_ALLOWED)
