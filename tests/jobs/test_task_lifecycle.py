"""What a user sees across a task's life: prices, progress, formats, the ledger, cursors."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image

from pixelfleet.context import ProcessContext
from pixelfleet.credits.pricing import OutputCharge, price_task
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import (
    PROBLEM,
    balance_of,
    follow_events,
    image_bytes,
    noise_png,
    sign_up,
    submit,
    truncated_jpeg,
    whole_ledger,
)


async def test_the_charged_cost_is_the_published_price(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "price@example.com")
    pipeline = {
        "operations": [{"op": "resize", "width": 100}, {"op": "grayscale"}],
        "output": {"format": "avif"},
    }
    task = (await submit(client, headers, pipeline, image_bytes("JPEG", (640, 480)))).json()
    assert task["cost"] == price_task(["resize", "grayscale"], [OutputCharge("avif")], 640 * 480)
    catalogue = (await client.get("/v1/operations")).json()
    prices = {op["name"]: op["price"] for op in catalogue["operations"]}
    formats = {entry["format"]: entry["price"] for entry in catalogue["output_formats"]}
    assert (
        task["cost"]
        == catalogue["base_price"] + prices["resize"] + prices["grayscale"] + formats["avif"]
    )


@pytest.mark.parametrize(
    ("fmt", "content_type", "pil_format"),
    [
        ("jpeg", "image/jpeg", "JPEG"),
        ("png", "image/png", "PNG"),
        ("webp", "image/webp", "WEBP"),
        ("avif", "image/avif", "AVIF"),
    ],
)
async def test_each_output_format_downloads_with_its_content_type(
    client: httpx.AsyncClient, ctx: ProcessContext, fmt: str, content_type: str, pil_format: str
) -> None:
    headers = await sign_up(client, f"{fmt}@example.com")
    pipeline = {
        "operations": [{"op": "thumbnail", "width": 64, "height": 64}],
        "output": {"format": fmt},
    }
    task_id = (await submit(client, headers, pipeline)).json()["id"]
    await drain_queue(ctx)
    result = await client.get(f"/v1/tasks/{task_id}/result", headers=headers)
    assert result.headers["content-type"] == content_type
    assert f'.{"jpg" if fmt == "jpeg" else fmt}"' in result.headers["content-disposition"]
    with Image.open(io.BytesIO(result.content)) as image:
        assert image.format == pil_format
        assert image.size == (64, 48)


async def test_the_ledger_explains_the_balance_after_success_failure_and_cancellation(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "ledger@example.com")
    ok = (await submit(client, headers, {"operations": [{"op": "grayscale"}]})).json()
    await drain_queue(ctx)
    broken = (await submit(client, headers, {}, truncated_jpeg())).json()
    await drain_queue(ctx)
    cancelled = (await submit(client, headers, {"operations": [{"op": "flip"}]})).json()
    await client.delete(f"/v1/tasks/{cancelled['id']}", headers=headers)

    entries = await whole_ledger(client, headers)
    balance = await balance_of(client, headers)
    assert balance == sum(entry["amount"] for entry in entries) == 100 - ok["cost"]
    assert entries[0]["balance_after"] == balance
    by_task: dict[str | None, list[str]] = {}
    for entry in entries:
        by_task.setdefault(entry["task_id"], []).append(entry["kind"])
    assert by_task[ok["id"]] == ["task_debit"]
    assert sorted(by_task[broken["id"]]) == ["task_debit", "task_refund"]
    assert sorted(by_task[cancelled["id"]]) == ["task_debit", "task_refund"]
    assert by_task[None] == ["grant"]
    ids = [entry["id"] for entry in entries]
    assert ids == sorted(ids, reverse=True)


async def test_a_task_whose_upload_is_gone_fails_as_source_missing_and_is_refunded(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "gone@example.com")
    task = (await submit(client, headers, {"operations": [{"op": "grayscale"}]})).json()
    async with ctx.read_sessions() as session:
        stored = await TaskRepository.from_session(session).get(uuid.UUID(task["id"]))
        assert stored is not None
        source_key = stored.source_key
    await ctx.storage.delete(source_key)  # an operator's cleanup, say

    assert await drain_queue(ctx) == ["failed"]

    failed = (await client.get(f"/v1/tasks/{task['id']}", headers=headers)).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "source-missing"
    assert await balance_of(client, headers) == 100


async def test_progress_streams_intermediate_values_then_done(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "steps@example.com")
    slow = {
        "operations": [{"op": "rotate", "angle": 10}, {"op": "grayscale"}],
        "output": {"format": "avif"},
    }
    task_id = (await submit(client, headers, slow, noise_png((2000, 2000)))).json()["id"]
    follower = asyncio.create_task(follow_events(client, headers, task_id))
    await asyncio.sleep(0.3)
    await drain_queue(ctx)
    events = await asyncio.wait_for(follower, 30)
    progress = [event["progress"] for _, event in events]
    assert progress == sorted(progress)
    assert any(0 < value < 100 for value in progress)
    assert events[-1] == ("done", events[-1][1])
    assert events[-1][1]["status"] == "succeeded"


async def test_the_event_stream_ends_with_a_failure_or_a_cancellation(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "ends@example.com")
    broken = (await submit(client, headers, {}, truncated_jpeg())).json()["id"]
    await drain_queue(ctx)
    failed = await follow_events(client, headers, broken)
    assert [name for name, _ in failed] == ["done"]
    assert failed[0][1]["status"] == "failed"
    assert failed[0][1]["error"]["code"] == "processing-failed"

    queued = (await submit(client, headers, {})).json()["id"]
    follower = asyncio.create_task(follow_events(client, headers, queued))
    await asyncio.sleep(0.3)
    await client.delete(f"/v1/tasks/{queued}", headers=headers)
    cancelled = await asyncio.wait_for(follower, 10)
    assert cancelled[0][1]["status"] == "queued"
    assert cancelled[-1][0] == "done"
    assert cancelled[-1][1]["status"] == "cancelled"


async def test_idempotency_keys_belong_to_one_user(client: httpx.AsyncClient) -> None:
    first = await sign_up(client, "one@example.com")
    second = await sign_up(client, "two@example.com")
    key = {"Idempotency-Key": "shared-key"}
    image = image_bytes()
    a = await submit(client, first, {}, image, extra_headers=key)
    b = await submit(client, second, {}, image, extra_headers=key)
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]


def _cursor(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "position",
    [
        {"at": "2026-01-01T00:00:00", "id": "0b7e8f2c-1d2e-4f5a-9b8c-7d6e5f4a3b2c"},
        {"at": "0001-01-01T00:00:00+14:00", "id": "0b7e8f2c-1d2e-4f5a-9b8c-7d6e5f4a3b2c"},
        {"at": "2026-01-01T00:00:00+00:00", "id": "not-a-uuid"},
        {"at": 5, "id": None},
        {"id": True},
        {"id": 10**30},
        {"id": -1},
        [1, 2, 3],
        "just a string",
    ],
)
async def test_crafted_cursors_are_refused_precisely(
    client: httpx.AsyncClient, position: object
) -> None:
    headers = await sign_up(client, "crafty@example.com")
    for path in ["/v1/tasks", "/v1/credits"]:
        response = await client.get(path, headers=headers, params={"cursor": _cursor(position)})
        assert response.status_code == 422, (path, position, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["field"] == "cursor"


async def test_readiness_fails_on_an_unmigrated_database(tmp_path: Any) -> None:
    from pixelfleet.api.app import create_app
    from pixelfleet.bootstrap import create_context
    from pixelfleet.settings import Settings

    ctx = create_context(Settings(data_dir=tmp_path, jwt_secret="x" * 40))
    try:
        transport = httpx.ASGITransport(app=create_app(ctx=ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.headers["content-type"] == PROBLEM
            assert "pixelfleet migrate" in ready.json()["detail"]
            assert (await http.get("/healthz")).status_code == 200
    finally:
        await ctx.close()
