"""`"format": "auto"`: an output stored as AVIF, WebP and a JPEG (PNG with alpha), priced as
three outputs, listed once, and sent as the one the reader's `Accept` names (`Vary: Accept`)."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from prometheus_client import REGISTRY
from sqlalchemy import update

from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.imaging.codecs import encode_output
from pixelfleet.imaging.spec import OutputSpec
from pixelfleet.jobs.maintenance import purge_expired_files
from pixelfleet.models import Task
from pixelfleet.storage import LocalStorage
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import image_bytes, sign_up, submit

AUTO = {"operations": [{"op": "resize", "width": 160}], "output": {"format": "auto"}}

# What browsers send for an image (`<img>`), and what each must get.
BROWSERS = [
    ("chrome", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "image/avif"),
    ("firefox", "image/avif,image/webp,*/*", "image/avif"),
    (
        "safari-17",
        "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,"
        "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
        "image/avif",  # both named with the same weight: the smaller AVIF
    ),
    ("edge-2019", "image/webp,image/apng,image/*,*/*;q=0.8", "image/webp"),
    (
        "safari-13",
        "image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5",
        "image/jpeg",  # a wildcard names no format
    ),
    ("curl", "*/*", "image/jpeg"),
    ("none", "", "image/jpeg"),
    ("avif-weighed-down", "image/avif;q=0.5,image/webp;q=0.9", "image/webp"),
    ("avif-refused", "image/avif;q=0,image/webp;q=0", "image/jpeg"),
    ("bad-weight", "image/avif;q=high,image/webp", "image/webp"),
]

def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image

@pytest.mark.parametrize(("mode", "fallback"), [("RGB", "jpeg"), ("RGBA", "png")])
def test_auto_writes_avif_webp_and_a_fallback_that_keeps_alpha(mode: str, fallback: str) -> None:
    image = Image.new(mode, (64, 48), (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30))
    encoded = encode_output(image, OutputSpec(format="auto"))
    assert encoded.format == fallback
    assert [each.format for each in encoded.alternates] == ["avif", "webp"]
    for each in (encoded, *encoded.alternates):
        with _decoded(each.data) as decoded:
            assert decoded.format == each.format.upper()
            assert decoded.size == (64, 48)
            assert ("A" in decoded.getbands()) == (mode == "RGBA")

async def _quote(client: httpx.AsyncClient, headers: dict[str, str], pipeline: Any) -> Any:
    files = {"file": ("a.jpg", image_bytes("JPEG", (320, 240)), "image/jpeg")}
    response = await client.post(
        "/v1/quotes", headers=headers, files=files, data={"pipeline": json.dumps(pipeline)}
    )
    assert response.status_code == 200, response.text
    return response.json()

async def test_auto_is_priced_as_three_outputs_and_refuses_options_of_one_format(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "auto-price@example.com")
    auto = await _quote(client, headers, AUTO)
    three = await _quote(
        client,
        headers,
        {
            "operations": AUTO["operations"],
            "variants": [
                {"name": name, "output": {"format": name}} for name in ("avif", "webp", "jpeg")
            ],
        },
    )
    assert auto["cost"] == three["cost"]
    assert [output["format"] for output in auto["outputs"]] == ["auto"]
    for option, value in [("progressive", True), ("lossless", True), ("max_bytes", 5000)]:
        pipeline = {"output": {"format": "auto", option: value}}
        refused = await submit(client, headers, pipeline, image_bytes())
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert error["field"] == f"pipeline.output.{option}"
        assert "name a format" in error["message"]

@pytest.fixture
async def auto_task(client: httpx.AsyncClient, ctx: ProcessContext) -> dict[str, Any]:
    headers = await sign_up(client, "auto@example.com")
    submitted = await submit(client, headers, AUTO, image_bytes("JPEG", (320, 240)))
    assert submitted.status_code == 202, submitted.text
    assert await drain_queue(ctx) == ["succeeded"]
    task = (await client.get(f"/v1/tasks/{submitted.json()['id']}", headers=headers)).json()
    return {"headers": headers, "task": task}

async def test_the_output_is_listed_once_with_its_three_encodings(
    auto_task: dict[str, Any],
) -> None:
    task = auto_task["task"]
    (output,) = task["outputs"]
    assert (output["name"], output["format"], output["content_type"]) == (
        "default",
        "auto",
        "image/jpeg",
    )
    assert [each["format"] for each in output["encodings"]] == ["avif", "webp", "jpeg"]
    assert output["encodings"][-1]["bytes"] == output["bytes"]
    assert task["result"]["url"] == output["url"]

async def test_each_browser_gets_the_format_it_names_and_caches_know_it_varies(
    client: httpx.AsyncClient, auto_task: dict[str, Any]
) -> None:
    task = auto_task["task"]
    owner = f"/v1/tasks/{task['id']}/result"
    tags: dict[str, str] = {}
    for browser, accept, expected in BROWSERS:
        for url, credential in [(owner, auto_task["headers"]), (task["result"]["url"], {})]:
            answer = await client.get(url, headers={**credential, "Accept": accept})
            assert answer.status_code == 200, (browser, answer.text)
            assert answer.headers["content-type"] == expected, browser
            assert answer.headers["vary"] == "Accept"
            with _decoded(answer.content) as image:
                assert image.size == (160, 120)
                assert Image.MIME[image.format or ""] == expected
            assert tags.setdefault(expected, answer.headers["etag"]) == answer.headers["etag"]
    assert len(set(tags.values())) == 3  # each encoding is its own entity

    # A cached AVIF is current for an AVIF reader; a JPEG reader's tag does not match it.
    avif = {"Accept": BROWSERS[0][1]}
    current = await client.get(
        owner, headers={**auto_task["headers"], **avif, "If-None-Match": tags["image/avif"]}
    )
    assert (current.status_code, current.headers["vary"]) == (304, "Accept")
    jpeg_reader = {"Accept": "*/*", "If-None-Match": tags["image/avif"]}
    other = await client.get(owner, headers={**auto_task["headers"], **jpeg_reader})
    assert other.status_code == 200
    assert other.headers["content-type"] == "image/jpeg"
    head = await client.head(task["result"]["url"], headers={"Accept": "image/webp"})
    assert (head.headers["content-type"], head.headers["vary"]) == ("image/webp", "Accept")
    assert head.headers["content-disposition"].endswith('.webp"')

async def test_an_output_of_one_format_does_not_vary(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "one-format@example.com")
    pipeline = {
        "variants": [
            {"name": "any", "output": {"format": "auto"}},
            {"name": "plain", "output": {"format": "webp"}},
        ]
    }
    submitted = await submit(client, headers, pipeline, image_bytes("PNG", (64, 64)))
    assert await drain_queue(ctx) == ["succeeded"]
    url = f"/v1/tasks/{submitted.json()['id']}/result"
    plain = await client.get(url + "?variant=plain", headers={**headers, "Accept": "image/avif"})
    assert plain.headers["content-type"] == "image/webp"
    assert "vary" not in plain.headers
    auto = await client.get(url + "?variant=any", headers={**headers, "Accept": "image/avif"})
    assert (auto.headers["content-type"], auto.headers["vary"]) == ("image/avif", "Accept")

async def test_the_three_files_are_deleted_together_when_the_task_expires(
    client: httpx.AsyncClient, ctx: ProcessContext, auto_task: dict[str, Any]
) -> None:
    assert isinstance(ctx.storage, LocalStorage)
    results = ctx.storage.root / "results"
    assert len(list(results.iterdir())) == 3
    async with ctx.sessions.begin() as session:
        await session.execute(update(Task).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert await purge_expired_files(ctx) == 1
    assert list(results.iterdir()) == []
    gone = await client.get(auto_task["task"]["result"]["url"], headers={"Accept": "image/avif"})
    assert gone.status_code == 410


async def test_the_bytes_of_each_of_the_three_files_are_counted(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    def produced(name: str) -> float:
        labels = {"format": name}
        return REGISTRY.get_sample_value("pixelfleet_bytes_produced_total", labels) or 0.0

    before = {name: produced(name) for name in ("avif", "webp", "jpeg")}
    headers = await sign_up(client, "auto-bytes@example.com")
    submitted = await submit(client, headers, AUTO, image_bytes("JPEG", (320, 240)))
    assert await drain_queue(ctx) == ["succeeded"]
    task = (await client.get(f"/v1/tasks/{submitted.json()['id']}", headers=headers)).json()
    (output,) = task["outputs"]
    assert {name: produced(name) - before[name] for name in before} == {
        each["format"]: each["bytes"] for each in output["encodings"]
    }
