"""A JSON object a request carries, read as sent and checked later by whoever reads it, whose
schema in the OpenAPI document is that of what it must be, so that clients generated from the
document get typed models for it."""

from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator


def _as_sent(value: Any) -> Any:
    return value


def documented_as(kind: Any) -> BeforeValidator:
    """`Annotated[dict[str, Any], documented_as(Model)]`: validated as any JSON object (the
    reader parses it, and names each wrong field in its own terms), documented as `Model`
    (or a union of models)."""
    return BeforeValidator(_as_sent, json_schema_input_type=kind)
