"""The OpenAPI document says what a client generator needs to make a working client: each
operation's id is its route's name (unique, so it names one generated function), a multipart
file is a binary string, every answer that carries bytes has a binary schema under a media type
generators read as bytes, every success answer a route gives is modelled, the event stream is
text whose format is described, and pipelines and the catalogue's parameter schemas are typed.
tests/api/test_generated_client.py runs a whole session through a generated client."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from pixelfleet.api import routes
from pixelfleet.api.app import create_app
from pixelfleet.imaging.operations import OPERATIONS
from pixelfleet.imaging.spec import OutputSpec
from pixelfleet.settings import Settings

METHODS = {"get", "put", "post", "delete", "patch"}
BINARY = {"type": "string", "format": "binary"}
_REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings()).openapi()
    return document


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def _route_names() -> dict[str, str]:
    """The name of each documented route, by `METHOD path`, from the route modules."""
    names = {}
    for module_info in pkgutil.iter_modules(routes.__path__):
        module = importlib.import_module(f"{routes.__name__}.{module_info.name}")
        router = getattr(module, "router", None)
        if not isinstance(router, APIRouter):
            continue
        for route in router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                for method in route.methods:
                    names[f"{method} {route.path}"] = route.name
    return names


def _resolved(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].removeprefix(_REF)]
    return schema


def test_each_operation_id_is_its_route_s_name_and_names_no_other(spec: dict[str, Any]) -> None:
    names = _route_names()
    ids = {name: operation["operationId"] for name, operation in _operations(spec)}
    assert ids == {name: names[name] for name in ids}
    assert len(set(ids.values())) == len(ids)
    assert ids["POST /v1/tasks"] == "submit_task"
    assert ids["GET /v1/tasks/{task_id}/result"] == "download_result"


def test_every_file_a_multipart_body_carries_is_binary(spec: dict[str, Any]) -> None:
    files = []
    for name, operation in _operations(spec):
        media = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
        if media is None:
            continue
        fields = _resolved(spec, media["schema"])["properties"]
        files += [(name, fields["file"].get("format"))]
    assert files == [
        ("POST /v1/tasks", "binary"),
        ("POST /v1/quotes", "binary"),
        ("POST /v1/assets", "binary"),
    ]


def test_every_answer_with_image_bytes_is_binary_under_a_bytes_media_type(
    spec: dict[str, Any],
) -> None:
    answers = []
    for name, operation in _operations(spec):
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            if "image/*" in content:
                answers.append(f"{name} {status}")
                assert content["image/*"]["schema"] == BINARY
                assert content["application/octet-stream"]["schema"] == BINARY
    assert sorted(answers) == sorted(
        f"GET {path} {status}"
        for path in ("/v1/tasks/{task_id}/result", "/v1/results/{token}", "/v1/images/{token}")
        for status in ("200", "206")
    )


def test_every_success_answer_with_a_body_has_a_schema(spec: dict[str, Any]) -> None:
    """A generator drops an answer whose media type has no schema."""
    for name, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status.startswith(("2", "3")):
                for media_type, media in response.get("content", {}).items():
                    assert "schema" in media, f"{name} {status} {media_type}"


def test_the_answers_routes_give_besides_their_default_are_modelled(spec: dict[str, Any]) -> None:
    paths = spec["paths"]

    def answers(path: str, method: str) -> set[str]:
        return {status for status in paths[path][method]["responses"] if status < "4"}

    assert answers("/v1/tasks", "post") == {"202"}
    assert answers("/v1/presets/{name}", "put") == {"200", "201"}
    for status in ("200", "201"):
        media = paths["/v1/presets/{name}"]["put"]["responses"][status]["content"]
        assert media["application/json"]["schema"] == {"$ref": _REF + "PresetOut"}
    assert answers("/v1/results/{token}", "get") == {"200", "206", "302", "304"}
    assert answers("/v1/tasks/{task_id}/result", "get") == {"200", "206", "304"}
    assert answers("/v1/presets/{name}", "delete") == {"204"}


def test_the_event_stream_is_text_whose_events_are_described(spec: dict[str, Any]) -> None:
    answer = spec["paths"]["/v1/tasks/{task_id}/events"]["get"]["responses"]["200"]
    assert list(answer["content"]) == ["text/event-stream"]
    stream = answer["content"]["text/event-stream"]
    assert stream["schema"] == {"type": "string"}
    for said in ("`progress`", "`done`", "`error`", "`ProgressEvent`", "keep-alive"):
        assert said in answer["description"]
    assert "ProgressEvent" in spec["components"]["schemas"]
    assert stream["example"].startswith("event: progress\ndata: {")


def test_a_pipeline_is_typed_with_one_model_per_operation(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["TaskOut"]["properties"]["pipeline"] == {"$ref": _REF + "Pipeline"}
    assert schemas["PresetOut"]["properties"]["pipeline"] == {"$ref": _REF + "Pipeline"}
    assert schemas["PresetBody"]["properties"]["pipeline"]["$ref"] == _REF + "Pipeline"
    submitted = schemas["TaskSubmission"]["properties"]["pipeline"]["anyOf"]
    assert submitted == [{"$ref": _REF + "Pipeline"}, {"$ref": _REF + "PresetReference"}]
    steps = schemas["Pipeline"]["properties"]["operations"]["items"]
    assert steps["discriminator"]["propertyName"] == "op"
    mapping = steps["discriminator"]["mapping"]
    assert mapping.keys() == OPERATIONS.keys()
    for op, ref in mapping.items():
        assert schemas[ref.removeprefix(_REF)]["properties"]["op"]["const"] == op
    variant_steps = schemas["Variant"]["properties"]["operations"]["items"]
    assert variant_steps["discriminator"]["mapping"] == mapping


def test_the_catalogue_s_parameter_schemas_are_typed(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    parameters = schemas["OperationOut"]["properties"]["parameters"]
    assert parameters == {"$ref": _REF + "ParametersSchema"}
    assert schemas["Catalogue"]["properties"]["output_parameters"] == parameters
    properties = schemas["ParametersSchema"]["properties"]["properties"]
    assert properties["additionalProperties"] == {"$ref": _REF + "ParameterSchema"}


async def test_the_catalogue_sends_each_parameter_schema_keyword_for_keyword(
    client: httpx.AsyncClient,
) -> None:
    """Typed as they are, the schemas are what the pipeline's models check, with no keyword
    added (unset ones are left out) and none lost; a shape defined once (a focal point) is
    written out where it is used."""
    catalogue = (await client.get("/v1/operations")).json()

    def text(schema: dict[str, Any]) -> str:
        return json.dumps(schema, sort_keys=True)

    def written_out(schema: dict[str, Any]) -> dict[str, Any]:
        definitions = schema.pop("$defs", {})
        as_text = json.dumps(schema)
        for name, definition in definitions.items():
            reference = json.dumps({"$ref": f"#/$defs/{name}"})
            as_text = as_text.replace(reference, json.dumps(definition))
        assert "$ref" not in as_text
        loaded: dict[str, Any] = json.loads(as_text)
        return loaded

    for operation in catalogue["operations"]:
        expected = written_out(OPERATIONS[operation["name"]].params.model_json_schema())
        assert text(operation["parameters"]) == text(expected), operation["name"]
    crop = next(each for each in catalogue["operations"] if each["name"] == "crop")
    focal = crop["parameters"]["properties"]["gravity"]["anyOf"][1]
    assert (focal["type"], focal["required"]) == ("object", ["x", "y"])
    assert text(catalogue["output_parameters"]) == text(OutputSpec.model_json_schema())
