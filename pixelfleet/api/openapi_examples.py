"""Examples in the OpenAPI document: one for every request body (composed from the examples
its fields carry) and one for every problem each error answer can be (from the problem types
its description names). Client generators and API tools show them; tests check that each
validates against its schema."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel

from pixelfleet.api.problems import PROBLEM_MEDIA_TYPE, VALIDATION_TITLE, invalid_fields_detail
from pixelfleet.errors import PROBLEM_BASE, PixelFleetError

_REF = "#/components/schemas/"
# Descriptions name problem types as "`slug`: what it means" ("`a`, `b`: ..." for several).
_SLUG_GROUP = re.compile(r"(?:`[a-z0-9-]+`(?:,\s*)?)+:?")
_VALIDATION_DETAIL = invalid_fields_detail(["pipeline.operations.0.width"])
_VALIDATION_EXAMPLE = [
    {
        "field": "pipeline.operations.0.width",
        "message": "Input should be greater than or equal to 1",
    }
]


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = schemas[schema["$ref"].removeprefix(_REF)]
    return schema


def _field_example(schema: dict[str, Any], schemas: dict[str, Any]) -> Any:
    # The field's own example first (beside a `$ref`), then its type's.
    for candidate in (schema, _resolve(schema, schemas)):
        if candidate.get("examples"):
            return candidate["examples"][0]
        if "example" in candidate:
            return candidate["example"]
    return None


def request_example(schema: dict[str, Any], schemas: dict[str, Any]) -> Any:
    """A body built from the examples of its fields: every field that has one (None when a
    required field has none: then the body is left without an example, and a test says so)."""
    schema = _resolve(schema, schemas)
    whole = _field_example(schema, schemas)
    if whole is not None:
        return whole
    required = set(schema.get("required", []))
    body: dict[str, Any] = {}
    for name, field in schema.get("properties", {}).items():
        value = _field_example(field, schemas)
        if value is not None:
            body[name] = value
        elif name in required:
            return None
    return body


@cache
def _problem_classes() -> dict[str, type[PixelFleetError]]:
    found: dict[str, type[PixelFleetError]] = {}
    pending: list[type[PixelFleetError]] = [PixelFleetError]
    while pending:
        error = pending.pop()
        found.setdefault(error.slug, error)
        pending.extend(error.__subclasses__())
    return found


def problem_examples(status: int, description: str) -> dict[str, Any]:
    """One example per problem type the description names (`slug`: what it means)."""
    classes = _problem_classes()
    groups = list(_SLUG_GROUP.finditer(description))
    named = []
    for index, group in enumerate(groups):
        end = groups[index + 1].start() if index + 1 < len(groups) else len(description)
        said = description[group.end() : end].strip(" ;,.")
        named += [(slug, said) for slug in re.findall(r"`([a-z0-9-]+)`", group.group())]
    if status == 422 and not named:  # FastAPI's own entry for a route's parameters
        named = [("validation-error", "")]
    examples: dict[str, Any] = {}
    for slug, said in named or [("error", description)]:
        known = classes.get(slug)
        if slug == "validation-error":
            title, detail = VALIDATION_TITLE, _VALIDATION_DETAIL
        else:
            title = known.title if known else HTTPStatus(status).phrase
            detail = (known and known.example_detail) or said or title
        value: dict[str, Any] = {
            "type": PROBLEM_BASE + slug,
            "title": title,
            "status": status,
            "detail": detail[:1].upper() + detail[1:].rstrip(".") + ".",
        }
        if slug == "validation-error":
            value["errors"] = _VALIDATION_EXAMPLE
        examples[slug] = {"summary": title, "value": value}
    return examples


def document_models(openapi: dict[str, Any], models: Iterable[type[BaseModel]]) -> None:
    """Adds `models` (bodies a route reads itself, named in its `openapi_extra`) to the
    document's component schemas, as FastAPI adds the models it sees."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema


def document_examples(openapi: dict[str, Any]) -> None:
    schemas = openapi.get("components", {}).get("schemas", {})
    for path in openapi.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for media in operation.get("requestBody", {}).get("content", {}).values():
                if "example" in media or "examples" in media or "schema" not in media:
                    continue
                example = request_example(media["schema"], schemas)
                if example is not None:
                    media["example"] = example
            for status, response in operation.get("responses", {}).items():
                media = response.get("content", {}).get(PROBLEM_MEDIA_TYPE)
                if media is None or "examples" in media:
                    continue
                media["examples"] = problem_examples(int(status), response["description"])
