"""What every log line of the current request or task carries: `request_id`, `task_id`,
`user_id`. Context variables, so that each asyncio task and thread sees its own.

A Celery message carries the sender's `request_id` and `user_id` in the headers named in
`MESSAGE_HEADERS`, so the worker that runs the task logs under the request that caused it."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

FIELDS = ("request_id", "task_id", "user_id")

_VARS: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"pixelfleet_{name}", default=None) for name in FIELDS
}

REQUEST_ID_HEADER = "X-Request-ID"
MESSAGE_HEADERS = {"request_id": "pixelfleet_request_id", "user_id": "pixelfleet_user_id"}
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def acceptable_request_id(candidate: str | None) -> str | None:
    """A client's request id if it is safe to log and pass on (short, no spaces or controls)."""
    if candidate and _ACCEPTABLE_REQUEST_ID.match(candidate):
        return candidate
    return None


def current() -> dict[str, str]:
    """The fields bound now (those that are set)."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Binds fields (None values are skipped) until the block ends."""
    tokens = []
    for name, value in fields.items():
        if name not in _VARS:
            raise KeyError(f"unknown log context field {name!r}")
        if value is not None:
            tokens.append((_VARS[name], _VARS[name].set(str(value))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


@contextmanager
def scope(**fields: object) -> Iterator[None]:
    """A context of its own for one request or task: the given fields bound, every other field
    cleared (nothing from a previous request or task shows through), and everything bound
    inside the block, by `bind` too, undone when it ends."""
    for name in fields:
        if name not in _VARS:
            raise KeyError(f"unknown log context field {name!r}")
    tokens = [
        (var, var.set(None if (value := fields.get(name)) is None else str(value)))
        for name, var in _VARS.items()
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def message_headers(**overrides: object) -> dict[str, str]:
    """The headers that carry the current fields (or the `overrides` that are not None) to a
    worker."""
    fields: dict[str, object] = {**current()}
    fields.update((name, value) for name, value in overrides.items() if value is not None)
    return {
        header: str(fields[name])
        for name, header in MESSAGE_HEADERS.items()
        if fields.get(name) is not None
    }


def from_message_headers(headers: Mapping[str, object]) -> dict[str, str]:
    """The fields a message's headers carry (a request id only if it is still acceptable)."""
    fields: dict[str, str] = {}
    for name, header in MESSAGE_HEADERS.items():
        value = headers.get(header)
        if isinstance(value, str) and value:
            fields[name] = value
    if "request_id" in fields and acceptable_request_id(fields["request_id"]) is None:
        del fields["request_id"]
    return fields


def bind(**fields: object) -> None:
    """Binds fields for the rest of the current context (a request's or a task's)."""
    for name, value in fields.items():
        if name not in _VARS:
            raise KeyError(f"unknown log context field {name!r}")
        if value is not None:
            _VARS[name].set(str(value))
