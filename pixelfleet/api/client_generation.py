"""What the OpenAPI document says so that a client generated from it works (openapi-python-client
and the like): every operation's id is its route's name (`submit_task`, `download_result`), and
every file a multipart body carries is a binary string, as generators type file fields.

The answers that carry bytes say so where each route declares them (`pixelfleet.api.downloads`,
the event stream in `pixelfleet.api.routes.tasks`)."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

MULTIPART = "multipart/form-data"
_SCHEMAS_REF = "#/components/schemas/"


def operation_id(route: APIRoute) -> str:
    """A route's `operationId`: its name, the handler's own unless the route gives another.
    Generated clients name their functions after it (`submit_task.sync(...)`), so it stays
    put when a path's prefix or a method moves."""
    return route.name


def document_file_fields(openapi: dict[str, Any]) -> None:
    """A file field of a multipart body gets `format: binary` beside the `contentMediaType`
    FastAPI gives it (JSON Schema 2020-12's way): generators that know only the former would
    type the field as text and send the file's name instead of its bytes."""
    schemas = openapi.get("components", {}).get("schemas", {})
    for path in openapi.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            media = operation.get("requestBody", {}).get("content", {}).get(MULTIPART)
            if media is None:
                continue
            schema = media.get("schema", {})
            while "$ref" in schema:
                schema = schemas[schema["$ref"].removeprefix(_SCHEMAS_REF)]
            for field in schema.get("properties", {}).values():
                if field.get("type") == "string" and "contentMediaType" in field:
                    field.setdefault("format", "binary")
