"""Assets: images a user uploads once and reuses as watermarks."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from pixelfleet.context import ProcessContext
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import (
    PROBLEM,
    assert_quota_exceeded,
    balance_of,
    image_bytes,
    sign_up,
    submit,
)


def _logo() -> bytes:
    logo = Image.new("RGBA", (64, 32), (255, 0, 0, 255))
    out = io.BytesIO()
    logo.save(out, "PNG")
    return out.getvalue()


async def _upload(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes
) -> httpx.Response:
    return await client.post("/v1/assets", headers=headers, files={"file": ("logo.png", data)})


async def test_an_uploaded_asset_watermarks_a_task(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "brand@example.com")
    asset = await _upload(client, headers, _logo())
    assert asset.status_code == 201, asset.text
    body = asset.json()
    assert (body["format"], body["width"], body["height"]) == ("png", 64, 32)

    white = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(white, "PNG")
    pipeline = {
        "operations": [
            {
                "op": "watermark",
                "asset": body["id"],
                "position": "southeast",
                "opacity": 1,
                "margin": 0,
                "scale": 0.16,
            }
        ],
        "output": {"format": "png"},
    }
    task = await submit(client, headers, pipeline, white.getvalue())
    assert task.status_code == 202, task.text
    assert await drain_queue(ctx) == ["succeeded"]
    result = await client.get(f"/v1/tasks/{task.json()['id']}/result", headers=headers)
    with Image.open(io.BytesIO(result.content)) as image:
        rgb = image.convert("RGB")
        assert rgb.getpixel((395, 295))[0] > 200 > rgb.getpixel((395, 295))[1]  # red corner
        assert rgb.getpixel((10, 10)) == (255, 255, 255)


async def test_assets_are_listed_fetched_and_deleted(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "lister@example.com")
    ids = [(await _upload(client, headers, _logo())).json()["id"] for _ in range(3)]
    page = (await client.get("/v1/assets", headers=headers, params={"limit": 2})).json()
    rest = (
        await client.get("/v1/assets", headers=headers, params={"cursor": page["next_cursor"]})
    ).json()
    assert [a["id"] for a in page["items"] + rest["items"]] == list(reversed(ids))
    assert (await client.get(f"/v1/assets/{ids[0]}", headers=headers)).status_code == 200
    assert (await client.delete(f"/v1/assets/{ids[0]}", headers=headers)).status_code == 204
    assert (await client.get(f"/v1/assets/{ids[0]}", headers=headers)).status_code == 404


async def test_a_pipeline_cannot_use_someone_elses_asset(client: httpx.AsyncClient) -> None:
    owner = await sign_up(client, "logo-owner@example.com")
    thief = await sign_up(client, "thief@example.com")
    asset_id = (await _upload(client, owner, _logo())).json()["id"]
    assert (await client.get(f"/v1/assets/{asset_id}", headers=thief)).status_code == 404
    pipeline = {"operations": [{"op": "watermark", "asset": asset_id}]}
    refused = await submit(client, thief, pipeline)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == PROBLEM
    assert asset_id in refused.json()["detail"]
    assert await balance_of(client, thief) == 100


async def test_a_task_whose_asset_was_deleted_fails_and_is_refunded(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "forgetful@example.com")
    asset_id = (await _upload(client, headers, _logo())).json()["id"]
    pipeline = {"operations": [{"op": "watermark", "asset": asset_id}]}
    task_id = (await submit(client, headers, pipeline)).json()["id"]
    await client.delete(f"/v1/assets/{asset_id}", headers=headers)
    assert await drain_queue(ctx) == ["failed"]
    failed = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert failed["status"] == "failed"
    assert await balance_of(client, headers) == 100


async def test_non_images_are_not_assets(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "junk@example.com")
    response = await _upload(client, headers, b"not an image at all")
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM
    big = await client.post(
        "/v1/assets", headers=headers, files={"file": ("x.jpg", image_bytes("JPEG", (32, 32)))}
    )
    assert big.status_code == 201


def _stored_assets(ctx: ProcessContext) -> list[Path]:
    folder = ctx.settings.storage_root / "assets"
    return sorted(folder.iterdir()) if folder.exists() else []


async def test_an_account_at_its_asset_quota_uploads_again_once_it_deletes_one(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.max_assets_per_user = 2
    headers = await sign_up(client, "hoarder@example.com")
    other = await sign_up(client, "neighbour@example.com")
    kept = [(await _upload(client, headers, _logo())).json()["id"] for _ in range(2)]

    refused = await _upload(client, headers, _logo())
    problem = assert_quota_exceeded(refused, "max_assets_per_user", status=403, limit=2, usage=2)
    assert problem["requested"] == 1
    listed = (await client.get("/v1/assets", headers=headers)).json()["items"]
    assert sorted(a["id"] for a in listed) == sorted(kept)
    assert len(_stored_assets(ctx)) == 2  # the refused upload left no file behind
    assert (await _upload(client, other, _logo())).status_code == 201  # a quota per account

    assert (await client.delete(f"/v1/assets/{kept[0]}", headers=headers)).status_code == 204
    assert (await _upload(client, headers, _logo())).status_code == 201


async def test_the_byte_quota_counts_what_the_account_stores(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    logo = _logo()
    dot = io.BytesIO()
    Image.new("L", (1, 1)).save(dot, "PNG")
    limit = 2 * len(logo) + len(dot.getvalue())
    ctx.settings.max_asset_bytes_per_user = limit
    headers = await sign_up(client, "heavy@example.com")
    sizes = [(await _upload(client, headers, logo)).json()["bytes"] for _ in range(2)]
    assert sizes == [len(logo), len(logo)]

    refused = await _upload(client, headers, logo)
    problem = assert_quota_exceeded(
        refused, "max_asset_bytes_per_user", status=403, limit=limit, usage=2 * len(logo)
    )
    assert problem["requested"] == len(logo)
    assert len(_stored_assets(ctx)) == 2
    # What still fits is taken.
    assert (await _upload(client, headers, dot.getvalue())).status_code == 201


@pytest.mark.both_backends
async def test_concurrent_uploads_never_pass_the_asset_quota(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.max_assets_per_user = 3
    headers = await sign_up(client, "burst-assets@example.com")
    logo = _logo()
    answers = await asyncio.gather(*(_upload(client, headers, logo) for _ in range(8)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] * 3 + [403] * 5
    listed = (await client.get("/v1/assets", headers=headers)).json()["items"]
    assert len(listed) == 3
    assert len(_stored_assets(ctx)) == 3


@pytest.mark.both_backends
async def test_concurrent_uploads_never_pass_the_byte_quota(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    logo = _logo()
    ctx.settings.max_asset_bytes_per_user = 3 * len(logo)
    headers = await sign_up(client, "burst-bytes@example.com")
    answers = await asyncio.gather(*(_upload(client, headers, logo) for _ in range(8)))
    assert sorted(answer.status_code for answer in answers) == [201] * 3 + [403] * 5
    listed = (await client.get("/v1/assets", headers=headers)).json()["items"]
    assert sum(asset["bytes"] for asset in listed) == 3 * len(logo)
    assert len(_stored_assets(ctx)) == 3


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_bytes_appended_to_an_image_are_neither_stored_nor_counted(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    logo = _logo()
    bitmap = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(bitmap, "BMP")
    assert len(bitmap.getvalue()) > 200
    limit = 2 * len(logo) + 200
    ctx.settings.max_asset_bytes_per_user = limit
    headers = await sign_up(client, "smuggler@example.com")
    stuffed = logo + b"\0" * 1_000_000
    answers = [await _upload(client, headers, stuffed) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [201, 201]
    assert [answer.json()["bytes"] for answer in answers] == [len(logo), len(logo)]
    assert [path.read_bytes() for path in _stored_assets(ctx)] == [logo, logo]

    # A bitmap does not say where it ends: it is stored as the PNG of its pixels, and counted so.
    converted = await _upload(client, headers, bitmap.getvalue() + b"\0" * 1000)
    assert converted.status_code == 201, converted.text
    stored = converted.json()
    assert (stored["format"], stored["width"], stored["height"]) == ("png", 8, 8)
    assert stored["bytes"] < 200
    refused = await _upload(client, headers, logo)
    assert_quota_exceeded(
        refused,
        "max_asset_bytes_per_user",
        status=403,
        limit=limit,
        usage=2 * len(logo) + stored["bytes"],
    )
