"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pixelfleet.errors import FieldError, InvalidInput

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, fields: dict[str, type]) -> dict[str, Any]:
    """The position a cursor names; a 422 on the `cursor` field for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(position, dict) or not all(
            isinstance(position.get(name), kind) for name, kind in fields.items()
        ):
            raise ValueError("not a cursor of this list")
        return position
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidInput(
            "The cursor is not one this API returned.",
            errors=[FieldError("cursor", "not a valid cursor")],
        ) from exc
