"""Synchronous calls of a running PixelFleet (a `pixelfleet up` process) over HTTP, for tests
that drive a real server as a client would."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.api_helpers import PASSWORD

FINAL = {"succeeded", "failed", "cancelled"}


def sign_in(http: httpx.Client, email: str) -> dict[str, str]:
    """Registers `email` and returns the headers of a logged-in caller."""
    registered = http.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 202, registered.text
    token = http.post("/v1/auth/token", data={"username": email, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def submit(
    http: httpx.Client, headers: dict[str, str], pipeline: dict[str, Any], image: bytes
) -> dict[str, Any]:
    """An accepted task (asserts the 202)."""
    response = http.post(
        "/v1/tasks",
        headers=headers,
        files={"file": ("photo", image)},
        data={"pipeline": json.dumps(pipeline)},
    )
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


def wait_final(
    http: httpx.Client, headers: dict[str, str], task_id: str, within: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        task: dict[str, Any] = http.get(f"/v1/tasks/{task_id}", headers=headers).json()
        if task["status"] in FINAL:
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish within {within}s")


def balance(http: httpx.Client, headers: dict[str, str]) -> int:
    credits: int = http.get("/v1/credits", headers=headers).json()["balance"]
    return credits


def ledger(http: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every ledger entry of the caller, newest first, following the cursor."""
    entries: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": 100}
    while True:
        page = http.get("/v1/credits", headers=headers, params=params).json()["ledger"]
        entries += page["items"]
        if page["next_cursor"] is None:
            return entries
        params["cursor"] = page["next_cursor"]
