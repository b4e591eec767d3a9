"""The OpenAPI document shows an example of every request body and of every problem each
error answer can be, and every example is valid against its own schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pixelfleet.api.app import create_app
from pixelfleet.api.problems import PROBLEM_MEDIA_TYPE
from pixelfleet.errors import PROBLEM_BASE
from pixelfleet.settings import Settings

METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings()).openapi()
    return document


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """Validates against `schema`, resolving `#/components/...` references in `spec`."""
    return Draft202012Validator({**schema, "components": spec["components"]})


def test_every_request_body_has_an_example_its_schema_accepts(spec: dict[str, Any]) -> None:
    bodies = 0
    for name, operation in _operations(spec):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            bodies += 1
            assert "example" in media, f"{name} ({media_type}) has no example"
            errors = list(_validator(spec, media["schema"]).iter_errors(media["example"]))
            assert errors == [], f"{name}: {[error.message for error in errors]}"
    assert bodies >= 15


def test_every_problem_answer_has_an_example_of_each_problem_it_names(
    spec: dict[str, Any],
) -> None:
    problem = _validator(spec, {"$ref": "#/components/schemas/Problem"})
    answers = 0
    for name, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            answers += 1
            examples = response["content"][PROBLEM_MEDIA_TYPE]["examples"]
            named = set(re.findall(r"`([a-z0-9-]+)`", response["description"]))
            if named:
                assert set(examples) == named, f"{name} {status}"
            for slug, example in examples.items():
                value = example["value"]
                assert list(problem.iter_errors(value)) == [], f"{name} {status} {slug}"
                assert value["status"] == int(status)
                assert value["type"] == PROBLEM_BASE + slug
                assert value["detail"].endswith(".")
    assert answers > 100


def test_the_402_example_is_what_a_short_balance_is_told(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/v1/tasks"]["post"]["responses"]
    example = responses["402"]["content"][PROBLEM_MEDIA_TYPE]["examples"]["insufficient-credits"]
    assert example["value"]["detail"].startswith("This task costs 4 credits")


def test_a_validation_example_lists_its_fields(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/v1/tasks"]["get"]["responses"]
    example = responses["422"]["content"][PROBLEM_MEDIA_TYPE]["examples"]["validation-error"]
    assert example["value"]["errors"][0]["field"] == "pipeline.operations.0.width"
