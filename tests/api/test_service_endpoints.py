"""Health, readiness, documentation, the operation catalogue and errors for unknown routes."""

from __future__ import annotations

import httpx

from tests.api_helpers import PROBLEM


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert (await client.head("/healthz")).status_code == 200
    assert (await client.head("/readyz")).status_code == 200


async def test_the_api_documents_itself(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    for path in ["/v1/tasks", "/v1/auth/token", "/v1/credits", "/v1/operations", "/v1/me"]:
        assert path in schema["paths"]
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200


async def test_the_catalogue_lists_each_operation_with_parameters_and_price(
    client: httpx.AsyncClient,
) -> None:
    catalogue = (await client.get("/v1/operations")).json()
    names = {operation["name"] for operation in catalogue["operations"]}
    assert names == {
        "resize",
        "thumbnail",
        "crop",
        "rotate",
        "flip",
        "flop",
        "auto_orient",
        "grayscale",
        "blur",
        "sharpen",
        "adjust",
        "pad",
        "watermark",
    }
    resize = next(op for op in catalogue["operations"] if op["name"] == "resize")
    assert resize["price"] >= 1
    assert "width" in resize["parameters"]["properties"]
    assert {"format", "quality", "max_bytes"} <= catalogue["output_parameters"]["properties"].keys()
    formats = {entry["format"] for entry in catalogue["output_formats"]}
    assert formats == {"jpeg", "png", "webp", "avif", "gif"}


async def test_unknown_routes_and_methods_answer_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["status"] == 404
    wrong_method = await client.put("/v1/operations")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == PROBLEM
