"""Small steps that API tests repeat: sign up, log in, submit a task."""

from __future__ import annotations

import io
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
from PIL import Image

PASSWORD = "correct horse battery"
PROBLEM = "application/problem+json"


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (640, 480)) -> bytes:
    image = Image.new("RGB", size)
    for x in range(0, size[0], 8):
        for y in range(0, size[1], 8):
            image.putpixel((x, y), ((x * 3) % 256, (y * 5) % 256, (x + y) % 256))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def noise_png(size: tuple[int, int]) -> bytes:
    """A PNG that does not compress: about 3 bytes a pixel."""
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def truncated_jpeg() -> bytes:
    """A JPEG whose header is fine but whose pixel data stops halfway: it fails when decoded."""
    whole = image_bytes("JPEG", (640, 480))
    return whole[: len(whole) // 2]


async def sign_up(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    """Registers `email` and returns the headers of a logged-in caller."""
    registered = await http.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 202, registered.text
    token = await http.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def submit(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    pipeline: dict[str, Any] | str | None = None,
    image: bytes | None = None,
    *,
    filename: str = "photo.jpg",
    extra_headers: dict[str, str] | None = None,
) -> httpx.Response:
    data = {}
    if pipeline is not None:
        data["pipeline"] = pipeline if isinstance(pipeline, str) else json.dumps(pipeline)
    return await http.post(
        "/v1/tasks",
        headers={**headers, **(extra_headers or {})},
        files={"file": (filename, image if image is not None else image_bytes(), "image/jpeg")},
        data=data,
    )


async def balance_of(http: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await http.get("/v1/credits", headers=headers)
    assert response.status_code == 200, response.text
    balance: int = response.json()["balance"]
    return balance


async def whole_ledger(http: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every ledger entry, newest first, following the cursor through small pages."""
    entries: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = (await http.get("/v1/credits", headers=headers, params=params)).json()["ledger"]
        entries += page["items"]
        if page["next_cursor"] is None:
            return entries
        params["cursor"] = page["next_cursor"]


async def follow_events(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a task's event stream, read until the server ends it."""
    async with client.stream("GET", f"/v1/tasks/{task_id}/events", headers=headers) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        return [event async for event in events_of(stream)]


async def events_of(stream: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a server-sent event stream, as they arrive."""
    name = ""
    async for line in stream.aiter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))


def assert_quota_exceeded(
    response: httpx.Response, quota: str, *, status: int, limit: int, usage: int
) -> dict[str, Any]:
    """The refusal's problem document, after checking it names the quota and its numbers."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["type"].endswith("/quota-exceeded")
    assert problem["status"] == status
    assert (problem["quota"], problem["limit"], problem["usage"]) == (quota, limit, usage)
    assert quota in problem["detail"]
    if status == 429:
        assert int(response.headers["Retry-After"]) >= 1
    else:
        assert "Retry-After" not in response.headers
    return problem
