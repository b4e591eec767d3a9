"""Health, readiness, documentation, the operation catalogue and errors for unknown routes."""

from __future__ import annotations

import uuid

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
    formats = {entry["format"]: entry for entry in catalogue["output_formats"]}
    assert formats.keys() == {"jpeg", "png", "webp", "avif", "gif", "auto"}
    # auto is AVIF, WebP and JPEG (or PNG) together: three outputs, at their three prices.
    assert formats["auto"]["outputs"] == 3
    three = sum(formats[name]["price"] for name in ("avif", "webp", "jpeg"))
    assert formats["auto"]["price"] == three


async def test_unknown_routes_and_methods_answer_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["status"] == 404
    wrong_method = await client.put("/v1/operations")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == PROBLEM


async def test_a_wrong_method_is_told_every_method_the_path_takes(
    client: httpx.AsyncClient,
) -> None:
    # Two routes share /v1/presets (GET lists, POST saves): the answer names both.
    presets = await client.request("PATCH", "/v1/presets")
    assert presets.status_code == 405
    assert presets.headers["Allow"] == "GET, POST"
    assert "GET, POST" in presets.json()["detail"]
    task = await client.request("PATCH", f"/v1/tasks/{uuid.uuid4()}")
    assert task.headers["Allow"] == "DELETE, GET"


async def test_every_error_answer_is_documented_as_a_problem(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    assert set(components["Problem"]["required"]) == {"type", "title", "status", "detail"}
    assert "HTTPValidationError" not in components  # FastAPI's shape, which is never sent

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert "503" in responses, where  # a backing service away
            if operation.get("security"):
                assert {"401", "403"} <= responses.keys(), where
            if "requestBody" in operation:
                assert {"400", "413"} <= responses.keys(), where
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == [PROBLEM], (where, status)
                    media = response["content"][PROBLEM]
                    assert media["schema"] == {"$ref": "#/components/schemas/Problem"}


async def test_the_document_lists_each_operations_own_refusals(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    def statuses(method: str, path: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert {"202", "402", "409", "413", "415", "422"} <= statuses("post", "/v1/tasks")
    for method, path in [
        ("get", "/v1/tasks/{task_id}"),
        ("get", "/v1/tasks/{task_id}/events"),
        ("get", "/v1/tasks/{task_id}/deliveries"),
        ("get", "/v1/assets/{asset_id}"),
        ("delete", "/v1/assets/{asset_id}"),
        ("get", "/v1/presets/{name}"),
        ("delete", "/v1/presets/{name}"),
    ]:
        assert "404" in statuses(method, path), (method, path)
    assert {"404", "409"} <= statuses("delete", "/v1/tasks/{task_id}")
    assert {"404", "409", "410"} <= statuses("get", "/v1/tasks/{task_id}/result")
    assert {"201", "409"} <= statuses("post", "/v1/presets")
    assert {"201", "413", "415"} <= statuses("post", "/v1/assets")
    assert {"200", "201", "409"} <= statuses("post", "/v1/payments/orders")  # 200: a replay
    assert {"400", "404", "409"} <= statuses("post", "/v1/payments/verify")
    assert "503" in statuses("get", "/v1/payments/packs")
    webhook = paths["/v1/payments/webhook"]["post"]
    assert "application/json" in webhook["requestBody"]["content"]  # read raw, but documented
    assert "400" in statuses("post", "/v1/payments/webhook")
