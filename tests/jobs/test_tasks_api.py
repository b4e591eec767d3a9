"""Image tasks through the HTTP API, with the real worker code draining the queue."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import zlib

import httpx
import pytest
from PIL import Image

from pixelfleet.context import ProcessContext
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
)

RESIZE_TO_WEBP = {
    "operations": [{"op": "resize", "width": 320}],
    "output": {"format": "webp", "quality": 80},
}


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge canvas; it has no pixel data worth decoding."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", 0)
        + b"IEND"
        + struct.pack(">I", zlib.crc32(b"IEND"))
    )


async def test_a_submitted_task_is_queued_debited_processed_and_downloadable(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "ann@example.com")
    response = await submit(client, headers, RESIZE_TO_WEBP, image_bytes("JPEG", (640, 480)))
    assert response.status_code == 202, response.text
    task = response.json()
    assert task["status"] == "queued"
    assert task["cost"] > 0
    assert {"id", "created_at", "cost", "status"} <= task.keys()
    assert response.headers["location"] == f"/v1/tasks/{task['id']}"
    assert await balance_of(client, headers) == 100 - task["cost"]

    assert await drain_queue(ctx) == ["succeeded"]

    done = (await client.get(f"/v1/tasks/{task['id']}", headers=headers)).json()
    assert done["status"] == "succeeded"
    assert done["progress"] == 100
    assert done["result"]["format"] == "webp"
    assert (done["result"]["width"], done["result"]["height"]) == (320, 240)

    result = await client.get(f"/v1/tasks/{task['id']}/result", headers=headers)
    assert result.status_code == 200
    assert result.headers["content-type"] == "image/webp"
    assert int(result.headers["content-length"]) == done["result"]["bytes"] == len(result.content)
    with Image.open(io.BytesIO(result.content)) as image:
        assert image.format == "WEBP"
        assert image.size == (320, 240)
    assert await balance_of(client, headers) == 100 - task["cost"]


async def test_a_task_that_fails_is_refunded_exactly_once(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "ben@example.com")
    response = await submit(client, headers, RESIZE_TO_WEBP, truncated_jpeg())
    assert response.status_code == 202, response.text
    task_id = response.json()["id"]
    assert await drain_queue(ctx) == ["failed"]
    failed = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"]
    assert failed["error"]["message"]
    assert await balance_of(client, headers) == 100
    ledger = (await client.get("/v1/credits", headers=headers)).json()["ledger"]["items"]
    kinds = [entry["kind"] for entry in ledger if entry["task_id"] == task_id]
    assert sorted(kinds) == ["task_debit", "task_refund"]
    result = await client.get(f"/v1/tasks/{task_id}/result", headers=headers)
    assert result.status_code == 409
    assert result.headers["content-type"] == PROBLEM


async def test_cancelling_a_queued_task_refunds_it(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "cal@example.com")
    task_id = (await submit(client, headers, RESIZE_TO_WEBP)).json()["id"]
    cancelled = await client.delete(f"/v1/tasks/{task_id}", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert await balance_of(client, headers) == 100
    assert await drain_queue(ctx) == []
    again = await client.delete(f"/v1/tasks/{task_id}", headers=headers)
    assert again.status_code == 409
    assert await balance_of(client, headers) == 100


async def test_a_finished_task_cannot_be_cancelled(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "cat@example.com")
    task_id = (await submit(client, headers, RESIZE_TO_WEBP)).json()["id"]
    await drain_queue(ctx)
    response = await client.delete(f"/v1/tasks/{task_id}", headers=headers)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/task-already-finished")


async def test_the_result_is_not_ready_before_the_task_ran(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "dee@example.com")
    task_id = (await submit(client, headers, RESIZE_TO_WEBP)).json()["id"]
    response = await client.get(f"/v1/tasks/{task_id}/result", headers=headers)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/result-not-ready")


async def test_another_users_task_does_not_exist_for_them(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    owner = await sign_up(client, "own@example.com")
    stranger = await sign_up(client, "str@example.com")
    task_id = (await submit(client, owner, RESIZE_TO_WEBP)).json()["id"]
    await drain_queue(ctx)
    for method, path in [
        ("GET", f"/v1/tasks/{task_id}"),
        ("GET", f"/v1/tasks/{task_id}/result"),
        ("GET", f"/v1/tasks/{task_id}/events"),
        ("DELETE", f"/v1/tasks/{task_id}"),
    ]:
        response = await client.request(method, path, headers=stranger)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == PROBLEM
    assert (await client.get("/v1/tasks", headers=stranger)).json()["items"] == []


async def test_a_malformed_task_id_is_a_validation_error(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "eli@example.com")
    response = await client.get("/v1/tasks/not-a-uuid", headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "task_id"


async def test_the_task_list_pages_by_cursor_and_filters_by_status(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "fox@example.com")
    ids = [(await submit(client, headers, {})).json()["id"] for _ in range(5)]
    await client.delete(f"/v1/tasks/{ids[0]}", headers=headers)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/tasks", headers=headers, params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    cancelled = (await client.get("/v1/tasks?status=cancelled", headers=headers)).json()
    assert [item["id"] for item in cancelled["items"]] == [ids[0]]
    bad_status = await client.get("/v1/tasks?status=exploded", headers=headers)
    assert bad_status.status_code == 422
    assert bad_status.json()["errors"][0]["field"] == "status"
    bad_cursor = await client.get("/v1/tasks?cursor=garbage", headers=headers)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"
    too_many = await client.get("/v1/tasks?limit=1000", headers=headers)
    assert too_many.status_code == 422


async def test_non_images_are_refused_with_415(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "gil@example.com")
    response = await submit(
        client, headers, {}, b"#!/bin/sh\necho not an image\n", filename="x.jpg"
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM
    assert await balance_of(client, headers) == 100


async def test_a_decompression_bomb_is_refused_without_decoding_it(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "hap@example.com")
    response = await submit(client, headers, {}, _png_header_claiming(100_000, 100_000))
    assert response.status_code == 422
    assert response.json()["type"].endswith("/image-too-many-pixels")
    assert await balance_of(client, headers) == 100


async def test_an_upload_over_the_limit_is_refused_with_413(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "ivy@example.com")
    ctx.settings.max_upload_bytes = 50_000
    big = noise_png((200, 200))
    assert len(big) > 50_000
    response = await submit(client, headers, {}, big)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


async def test_pipeline_errors_name_the_field_at_fault(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "jay@example.com")
    cases = {
        json.dumps({"operations": [{"op": "resize", "width": -5}]}): "pipeline.operations.0.width",
        json.dumps({"operations": [{"op": "explode"}]}): "pipeline.operations.0",
        json.dumps({"output": {"format": "bmp"}}): "pipeline.output.format",
        json.dumps({"output": {"quality": 500}}): "pipeline.output.quality",
        "{this is not json": "pipeline",
    }
    for pipeline, field in cases.items():
        response = await submit(client, headers, pipeline)
        assert response.status_code == 422, pipeline
        assert response.headers["content-type"] == PROBLEM
        fields = [error["field"] for error in response.json()["errors"]]
        assert any(f.startswith(field) for f in fields), (pipeline, fields)
    assert await balance_of(client, headers) == 100


async def test_work_that_cannot_be_done_is_refused_before_it_is_charged(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "joy@example.com")
    crop_outside = {"operations": [{"op": "crop", "x": 5000, "y": 0, "width": 10, "height": 10}]}
    outside = await submit(client, headers, crop_outside)
    assert outside.status_code == 422
    # Two pads, each under max_output_side, would make an image wider than it.
    stacked = {"operations": [{"op": "pad", "left": 7000}, {"op": "pad", "right": 7000}]}
    padded = await submit(client, headers, stacked)
    assert padded.status_code == 422
    [error] = padded.json()["errors"]
    assert error["field"] == "pipeline.operations.1"
    assert "(max_output_side)" in error["message"]
    ctx.settings.max_output_pixels = 1_000_000
    huge = await submit(
        client, headers, {"operations": [{"op": "resize", "width": 4000, "upscale": True}]}
    )
    assert huge.status_code == 422
    assert [error["field"] for error in huge.json()["errors"]] == ["pipeline.operations.0"]
    assert await balance_of(client, headers) == 100
    assert (await client.get("/v1/tasks", headers=headers)).json()["items"] == []


async def test_a_missing_file_is_a_validation_error(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "kit@example.com")
    response = await client.post("/v1/tasks", headers=headers, data={"pipeline": "{}"})
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["file"]


async def test_a_task_beyond_the_balance_is_refused_with_402(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.signup_credits = 2
    headers = await sign_up(client, "lou@example.com")
    expensive = {"operations": [{"op": "grayscale"}, {"op": "flip"}], "output": {"format": "avif"}}
    response = await submit(client, headers, expensive)
    assert response.status_code == 402
    assert response.json()["type"].endswith("/insufficient-credits")
    assert (await client.get("/v1/tasks", headers=headers)).json()["items"] == []
    assert await balance_of(client, headers) == 2


@pytest.mark.both_backends
async def test_concurrent_submissions_never_overdraw(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.signup_credits = 10
    headers = await sign_up(client, "max@example.com")
    image = image_bytes("PNG", (64, 64))
    pipeline = {"output": {"format": "png"}}  # costs 1 credit
    responses = await asyncio.gather(*(submit(client, headers, pipeline, image) for _ in range(16)))
    codes = sorted(response.status_code for response in responses)
    assert codes.count(202) == 10
    assert codes.count(402) == 6
    assert await balance_of(client, headers) == 0


async def test_the_same_idempotency_key_and_request_return_the_same_task(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "ned@example.com")
    image = image_bytes()
    key = {"Idempotency-Key": "order-42"}
    first = await submit(client, headers, RESIZE_TO_WEBP, image, extra_headers=key)
    second = await submit(client, headers, RESIZE_TO_WEBP, image, extra_headers=key)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert await balance_of(client, headers) == 100 - first.json()["cost"]
    different = await submit(
        client, headers, {"operations": [{"op": "grayscale"}]}, image, extra_headers=key
    )
    assert different.status_code == 409
    assert different.json()["type"].endswith("/idempotency-key-reused")


@pytest.mark.both_backends
async def test_concurrent_requests_with_one_idempotency_key_make_one_task(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "oli@example.com")
    image = image_bytes()
    key = {"Idempotency-Key": "same-click"}
    responses = await asyncio.gather(
        *(submit(client, headers, RESIZE_TO_WEBP, image, extra_headers=key) for _ in range(6))
    )
    assert {response.status_code for response in responses} == {202}
    assert len({response.json()["id"] for response in responses}) == 1
    assert len((await client.get("/v1/tasks", headers=headers)).json()["items"]) == 1


async def test_events_stream_progress_until_a_final_state(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "pam@example.com")
    task_id = (await submit(client, headers, RESIZE_TO_WEBP)).json()["id"]
    follower = asyncio.create_task(follow_events(client, headers, task_id))
    await asyncio.sleep(0.3)
    await drain_queue(ctx)
    events = await asyncio.wait_for(follower, 10)
    assert events[0][1]["status"] == "queued"
    assert events[-1][0] == "done"
    assert events[-1][1]["status"] == "succeeded"
    assert events[-1][1]["progress"] == 100
    assert all(name == "progress" for name, _ in events[:-1])
