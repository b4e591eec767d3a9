"""Opaque cursors for keyset pagination, and pages built from a `limit + 1` query."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pixelfleet.client_text import problem_in_json
from pixelfleet.errors import FieldError, InvalidInput

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_BIGINT = 2**63 - 1

T = TypeVar("T")


class InvalidCursor(InvalidInput):
    def __init__(self) -> None:
        super().__init__(
            "The cursor is not one this API returned.",
            errors=[FieldError("cursor", "not a valid cursor")],
        )


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError) as exc:
        raise InvalidCursor from exc
    # Only the API makes cursors, and it puts no control character or lone surrogate in one: a
    # cursor that holds one was made elsewhere, and its text must not reach the database.
    if not isinstance(position, dict) or problem_in_json(position, "cursor") is not None:
        raise InvalidCursor
    return position


def decode_id_cursor(cursor: str) -> int:
    """The integer id a cursor from `encode_cursor({"id": ...})` holds."""
    value = decode_cursor(cursor).get("id")
    if type(value) is not int or not 0 < value <= MAX_BIGINT:
        raise InvalidCursor
    return value


def decode_time_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (timestamp, uuid) position a cursor from `encode_time_cursor` holds."""
    position = decode_cursor(cursor)
    stamp, ident = position.get("at"), position.get("id")
    if not isinstance(stamp, str) or not isinstance(ident, str):
        raise InvalidCursor
    try:
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None:
            raise InvalidCursor
        # Normalised here, so an out-of-range value fails now and not in the database driver.
        return at.astimezone(UTC), uuid.UUID(ident)
    except (ValueError, OverflowError) as exc:
        raise InvalidCursor from exc


def encode_time_cursor(at: datetime, ident: uuid.UUID) -> str:
    return encode_cursor({"at": at.isoformat(), "id": str(ident)})


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def page_of(rows: Sequence[T], limit: int, cursor_after: Callable[[T], str]) -> Page[T]:
    """A page from rows fetched with `limit + 1`: the extra row only says there is more."""
    items = list(rows[:limit])
    more = len(rows) > limit and bool(items)
    return Page(items, cursor_after(items[-1]) if more else None)
