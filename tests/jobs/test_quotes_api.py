"""`POST /v1/quotes`: the exact price and the predicted outputs of a task, charging nothing and
storing nothing. A task is then charged exactly its quote, and makes the outputs it foresaw."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from pixelfleet.context import ProcessContext
from pixelfleet.imaging.source_formats import content_type_by_signature
from pixelfleet.storage import LocalStorage
from pixelfleet.storage.local import STAGING_DIR
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import balance_of, image_bytes, noise_png, sign_up, submit

RESIZE = {"operations": [{"op": "resize", "width": 320}], "output": {"format": "webp"}}
FORMATS = ["jpeg", "png", "webp", "avif", "gif"]
SOURCES = {
    "jpeg 640x480": image_bytes("JPEG", (640, 480)),
    "png 300x500": image_bytes("PNG", (300, 500)),
    "noisy png 900x700": noise_png((900, 700)),
}


async def quote(
    client: httpx.AsyncClient, headers: dict[str, str], pipeline: Any, image: bytes
) -> httpx.Response:
    return await client.post(
        "/v1/quotes",
        headers=headers,
        files={"file": ("photo", image)},
        data={"pipeline": json.dumps(pipeline)},
    )


def _files(ctx: ProcessContext, folder: str) -> list[Path]:
    assert isinstance(ctx.storage, LocalStorage)
    where = ctx.storage.root / folder
    return list(where.iterdir()) if where.exists() else []


def random_pipeline(rng: random.Random) -> dict[str, Any]:
    """A pipeline of random operations, outputs and variants, valid for any source."""
    operations: list[dict[str, Any]] = []
    for _ in range(rng.randint(0, 4)):
        operations.append(
            rng.choice(
                [
                    {"op": "resize", "width": rng.randint(16, 1200)},
                    {
                        "op": "thumbnail",
                        "width": rng.randint(8, 400),
                        "height": rng.randint(8, 400),
                    },
                    {"op": "grayscale"},
                    {"op": "flip"},
                    {"op": "rotate", "angle": rng.choice([90, 180, 270, 33])},
                    {"op": "blur", "sigma": round(rng.uniform(0.5, 4), 2)},
                    {"op": "sharpen"},
                ]
            )
        )
    pipeline: dict[str, Any] = {"operations": operations}
    if rng.random() < 0.6:
        pipeline["output"] = {"format": rng.choice(FORMATS)}
    elif rng.random() < 0.6:  # variants, each with its own output
        pipeline["variants"] = [
            {
                "name": f"v{index}",
                "operations": [{"op": "resize", "width": rng.randint(8, 600)}],
                "output": {"format": rng.choice(FORMATS)},
            }
            for index in range(rng.randint(1, 3))
        ]
    return pipeline


async def test_a_quote_charges_nothing_stores_nothing_and_foresees_the_task(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "quoted@example.com")
    image = image_bytes("JPEG", (640, 480))
    quoted = await quote(client, headers, RESIZE, image)
    assert quoted.status_code == 200, quoted.text
    assert quoted.json()["source"] == {"format": "jpeg", "width": 640, "height": 480,
                                       "bytes": len(image)}  # fmt: skip
    assert quoted.json()["outputs"] == [
        {"name": "default", "format": "webp", "width": 320, "height": 240}
    ]
    assert await balance_of(client, headers) == 100
    assert _files(ctx, "sources") == []
    assert _files(ctx, STAGING_DIR) == []

    task = (await submit(client, headers, RESIZE, image)).json()
    assert task["cost"] == quoted.json()["cost"]
    assert await balance_of(client, headers) == 100 - task["cost"]
    assert await drain_queue(ctx) == ["succeeded"]
    done = (await client.get(f"/v1/tasks/{task['id']}", headers=headers)).json()
    made = [
        {key: output[key] for key in ("name", "format", "width", "height")}
        for output in done["outputs"]
    ]
    assert made == quoted.json()["outputs"]


async def _named_sources(
    client: httpx.AsyncClient, headers: dict[str, str], image: bytes
) -> dict[str, dict[str, str]]:
    """The image as each kind of named source: a direct upload, and an earlier task's source."""
    target = await client.post(
        "/v1/uploads",
        headers=headers,
        json={"content_type": content_type_by_signature(image), "bytes": len(image)},
    )
    sent = await client.put(
        target.json()["url"], headers=target.json()["headers"], content=image
    )
    assert sent.status_code == 204, sent.text
    task = (await submit(client, headers, {}, image)).json()
    return {"upload": {"upload": target.json()["id"]}, "task": {"task": task["id"]}}


async def test_every_task_is_charged_exactly_its_quote(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    """A randomized property: random pipelines on images of several formats and sizes, each
    uploaded with the request or named (a direct upload, an earlier task's source); a fixed
    seed, so that a failure can be run again."""
    ctx.settings.signup_credits = 1_000_000
    ctx.settings.max_active_tasks_per_user = 1_000
    headers = await sign_up(client, "property@example.com")
    named = {name: await _named_sources(client, headers, image) for name, image in SOURCES.items()}
    rng = random.Random(20261206)
    checked: Counter[str] = Counter()
    for _ in range(40):
        pipeline = random_pipeline(rng)
        name, image = rng.choice(list(SOURCES.items()))
        kind = rng.choice(["file", "upload", "task"])
        if kind == "file":
            quoted = await quote(client, headers, pipeline, image)
            submitted = await submit(client, headers, pipeline, image)
        else:
            body = {"source": named[name][kind], "pipeline": pipeline}
            quoted = await client.post("/v1/quotes", headers=headers, json=body)
            submitted = await client.post("/v1/tasks", headers=headers, json=body)
        assert quoted.status_code in {200, 422}, quoted.text
        # Work the quote refuses (an output over a limit, say), the submission refuses alike.
        assert submitted.status_code == (202 if quoted.status_code == 200 else 422), (
            name,
            kind,
            pipeline,
            submitted.text,
        )
        if quoted.status_code == 200:
            assert submitted.json()["cost"] == quoted.json()["cost"], (name, kind, pipeline)
            checked[kind] += 1
    assert sum(checked.values()) >= 30
    assert min(checked.values()) >= 5, checked


async def test_a_quote_takes_a_named_source_and_needs_no_credits(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "named@example.com")
    first = (await submit(client, headers, RESIZE, image_bytes("PNG", (200, 100)))).json()
    ctx.settings.signup_credits = 0
    broke = await sign_up(client, "broke@example.com")
    assert await balance_of(client, broke) == 0
    cheap = await quote(client, broke, RESIZE, image_bytes("PNG", (200, 100)))
    assert cheap.status_code == 200, cheap.text
    again = await client.post(
        "/v1/quotes",
        headers=headers,
        json={"source": {"task": first["id"]}, "pipeline": {"operations": [{"op": "grayscale"}]}},
    )
    assert again.status_code == 200, again.text
    assert again.json()["source"]["width"] == 200
    assert _files(ctx, STAGING_DIR) == []


async def test_a_quote_refuses_what_a_submission_refuses(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "refused-quote@example.com")
    not_an_image = await quote(client, headers, RESIZE, b"hello, not an image")
    assert not_an_image.status_code == 415
    bad = await quote(client, headers, {"operations": [{"op": "explode"}]}, image_bytes())
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["pipeline.operations.0.op"]
    nobody_s = {"source": {"task": "6f1c2d7e-0000-4000-8000-000000000000"}}
    stranger = await client.post("/v1/quotes", headers=headers, json=nobody_s)
    assert stranger.status_code == 404
