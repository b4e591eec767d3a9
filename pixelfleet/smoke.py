"""A smoke test of a running deployment, as a client sees it: the API is live and ready, a new
account can sign in, and a tiny image goes through the whole pipeline and comes back.

`helm test` runs it inside the cluster; ops can run it against any deployment."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from PIL import Image

SOURCE_SIDE = 16
RESULT_WIDTH = 8


class SmokeTestFailed(Exception):
    """A step of the smoke test did not go as a working deployment would make it go."""


@dataclass(frozen=True)
class Account:
    email: str
    password: str

    @classmethod
    def throwaway(cls) -> Account:
        suffix = uuid.uuid4().hex[:12]
        return cls(email=f"smoke-{suffix}@example.com", password=f"smoke-{uuid.uuid4().hex}")


def _expect(response: httpx.Response, status: int, step: str) -> httpx.Response:
    if response.status_code != status:
        raise SmokeTestFailed(
            f"{step}: expected HTTP {status}, got {response.status_code}: {response.text[:500]}"
        )
    return response


def _tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (SOURCE_SIDE, SOURCE_SIDE), (200, 80, 40)).save(out, format="PNG")
    return out.getvalue()


def run_smoke_test(
    base_url: str,
    *,
    timeout: float = 120.0,
    account: Account | None = None,
    say: Callable[[str], None] = print,
) -> str:
    """Runs every step against `base_url`; returns the id of the task it ran."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=30.0) as http:
        _expect(http.get("/healthz"), 200, "liveness (/healthz)")
        _expect(http.get("/readyz"), 200, "readiness (/readyz)")
        say("the API is live and ready")

        if account is None:
            account = Account.throwaway()
            _expect(
                http.post(
                    "/v1/auth/register",
                    json={"email": account.email, "password": account.password},
                ),
                202,
                "sign-up",
            )
        token = _expect(
            http.post(
                "/v1/auth/token", data={"username": account.email, "password": account.password}
            ),
            200,
            "sign-in",
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        say(f"signed in as {account.email}")

        pipeline = {
            "operations": [{"op": "resize", "width": RESULT_WIDTH}],
            "output": {"format": "png"},
        }
        task = _expect(
            http.post(
                "/v1/tasks",
                files={"file": ("smoke.png", _tiny_png(), "image/png")},
                data={"pipeline": json.dumps(pipeline)},
                headers={"Idempotency-Key": f"smoke-{uuid.uuid4().hex}"},
            ),
            202,
            "task submission",
        ).json()
        task_id = str(task["id"])
        say(f"task {task_id} submitted")

        while task["status"] not in ("succeeded", "failed", "cancelled"):
            if time.monotonic() >= deadline:
                raise SmokeTestFailed(
                    f"task {task_id} is still {task['status']} after {timeout:.0f} s: "
                    "are the workers and (in Kubernetes) the operator running?"
                )
            time.sleep(0.5)
            task = _expect(http.get(f"/v1/tasks/{task_id}"), 200, "task status").json()
        if task["status"] != "succeeded":
            raise SmokeTestFailed(f"task {task_id} ended {task['status']}: {task.get('error')}")

        result = _expect(http.get(f"/v1/tasks/{task_id}/result"), 200, "result download")
        with Image.open(io.BytesIO(result.content)) as image:
            if image.format != "PNG" or image.width != RESULT_WIDTH:
                raise SmokeTestFailed(
                    f"the result is a {image.format} {image.width}x{image.height} image, "
                    f"not a PNG {RESULT_WIDTH} pixels wide"
                )
        say(f"task {task_id} succeeded and its result came back")
        return task_id
