"""What every log line of the current request or task carries: `request_id`, `task_id`,
`user_id`. Context variables, so that each asyncio task and thread sees its own."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

FIELDS = ("request_id", "task_id", "user_id")

_VARS: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"pixelfleet_{name}", default=None) for name in FIELDS
}

REQUEST_ID_HEADER = "X-Request-ID"
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


def bind(**fields: object) -> None:
    """Binds fields for the rest of the current context (a request's or a task's)."""
    for name, value in fields.items():
        if name not in _VARS:
            raise KeyError(f"unknown log context field {name!r}")
        if value is not None:
            _VARS[name].set(str(value))
