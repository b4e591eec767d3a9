"""Malformed and hostile requests get a precise 4xx problem document, never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api_helpers import PROBLEM, image_bytes, sign_up


def _task_requests(image: bytes) -> list[tuple[str, dict[str, Any], int]]:
    deep = "[" * 100_000 + "]" * 100_000
    return [
        ("json body instead of multipart", {"json": {"pipeline": {}}}, 422),
        ("text body", {"content": b"hello", "headers": {"content-type": "text/plain"}}, 422),
        ("file sent as a plain field", {"data": {"file": "not a file", "pipeline": "{}"}}, 422),
        (
            "deeply nested pipeline",
            {"files": {"file": ("a.jpg", image)}, "data": {"pipeline": deep}},
            422,
        ),
        ("null pipeline", {"files": {"file": ("a.jpg", image)}, "data": {"pipeline": "null"}}, 422),
        ("list pipeline", {"files": {"file": ("a.jpg", image)}, "data": {"pipeline": "[]"}}, 422),
        (
            "string pipeline",
            {"files": {"file": ("a.jpg", image)}, "data": {"pipeline": '"x"'}},
            422,
        ),
        (
            "pipeline over a megabyte",
            {"files": {"file": ("a.jpg", image)}, "data": {"pipeline": " " * 1_100_000 + "{}"}},
            400,
        ),
        (
            "broken multipart",
            {
                "content": b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
                "headers": {"content-type": "multipart/form-data; boundary=xyz"},
            },
            422,
        ),
        (
            "an idempotency key that is far too long",
            {"files": {"file": ("a.jpg", image)}, "headers": {"Idempotency-Key": "k" * 300}},
            422,
        ),
        ("an empty file", {"files": {"file": ("a.jpg", b"")}}, 415),
    ]


@pytest.mark.parametrize("case", range(len(_task_requests(b""))))
async def test_hostile_task_submissions_are_refused_precisely(
    client: httpx.AsyncClient, case: int
) -> None:
    headers = await sign_up(client, "mallory@example.com")
    name, kwargs, expected = _task_requests(image_bytes("JPEG", (32, 32)))[case]
    kwargs.setdefault("headers", {}).update(headers)
    response = await client.post("/v1/tasks", **kwargs)
    assert response.status_code == expected, (name, response.text)
    assert response.headers["content-type"] == PROBLEM, name
    assert (await client.get("/v1/credits", headers=headers)).json()["balance"] == 100


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "expected"),
    [
        (
            "POST",
            "/v1/auth/register",
            {"json": {"email": "a@b.co" + "x" * 10_000, "password": "p" * 9}},
            422,
        ),
        ("POST", "/v1/auth/register", {"json": {"email": "a@b.co", "password": "p" * 10_000}}, 422),
        ("POST", "/v1/auth/register", {"json": ["a", "b"]}, 422),
        (
            "POST",
            "/v1/auth/register",
            {"json": {"email": "a@b.co", "password": "pppppppp", "role": "admin"}},
            422,
        ),
        ("POST", "/v1/auth/token", {"data": {"username": "x"}}, 422),
        ("POST", "/v1/auth/refresh", {"json": {"refresh_token": "t" * 10_000}}, 422),
        ("GET", "/v1/me", {"headers": {"Authorization": "Bearer "}}, 401),
        ("GET", "/v1/me", {"headers": {"Authorization": "Basic YTpi"}}, 401),
        ("GET", "/v1/me", {"headers": {"Authorization": "Bearer " + "a" * 20_000}}, 401),
        ("GET", "/v1/tasks", {"params": {"limit": "abc"}}, 401),
    ],
)
async def test_hostile_account_requests_are_refused_precisely(
    client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any], expected: int
) -> None:
    response = await client.request(method, path, **kwargs)
    assert response.status_code == expected, response.text
    assert response.headers["content-type"] == PROBLEM


async def test_hostile_list_parameters_are_refused_precisely(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "trudy@example.com")
    for params in [
        {"limit": "abc"},
        {"limit": "0"},
        {"cursor": "é" * 20},
        {"cursor": "x" * 600},
        {"status": "'; DROP TABLE tasks; --"},
    ]:
        for path in ["/v1/tasks", "/v1/credits"]:
            if path == "/v1/credits" and "status" in params:
                continue
            response = await client.get(path, headers=headers, params=params)
            assert response.status_code == 422, (path, params, response.text)
            assert response.headers["content-type"] == PROBLEM


async def test_an_oversized_body_is_refused_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "oscar@example.com")
    declared = await client.post(
        "/v1/tasks",
        headers={
            **headers,
            "content-type": "multipart/form-data; boundary=x",
            "content-length": str(10**12),
        },
        content=b"--x--",
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == PROBLEM

    sent: list[int] = []

    async def endless_chunks() -> Any:
        yield (
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n"
        )
        chunk = b"0" * 65_536
        for _ in range(10_000):  # 650 MB if nobody stops it
            sent.append(len(chunk))
            yield chunk

    chunked = await client.post(
        "/v1/tasks",
        headers={**headers, "content-type": "multipart/form-data; boundary=x"},
        content=endless_chunks(),
    )
    assert chunked.status_code == 413
    assert chunked.headers["content-type"] == PROBLEM
    assert sum(sent) < 64 * 1024 * 1024


async def test_an_oversized_json_body_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": "a@b.co", "password": "p" * 2_000_000}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
