"""Direct uploads with local storage: `POST /v1/uploads` says where to PUT the bytes (the API's
own token URL), the PUT is held to the declaration, and the upload is then a task's source
(`{"upload": id}`) until it expires. Nothing refused is kept or charged."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.jobs import maintenance
from pixelfleet.models import Upload
from pixelfleet.storage import LocalStorage
from pixelfleet.storage.local import STAGING_DIR
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import PROBLEM, balance_of, image_bytes, sign_up

IMAGE = image_bytes("JPEG", (320, 240))
GRAYSCALE = {"operations": [{"op": "grayscale"}], "output": {"format": "png"}}


async def create_upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    content_type: str = "image/jpeg",
    size: int = len(IMAGE),
) -> dict[str, Any]:
    response = await client.post(
        "/v1/uploads", headers=headers, json={"content_type": content_type, "bytes": size}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def put_bytes(
    client: httpx.AsyncClient, target: dict[str, Any], body: bytes, **headers: str
) -> httpx.Response:
    """The PUT a client makes: to the given URL, with the given headers, no Authorization."""
    return await client.put(target["url"], headers={**target["headers"], **headers}, content=body)


async def submit_upload(
    client: httpx.AsyncClient, headers: dict[str, str], upload_id: str
) -> httpx.Response:
    body = {"source": {"upload": upload_id}, "pipeline": GRAYSCALE}
    return await client.post("/v1/tasks", headers=headers, json=body)


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith(f"/{slug}")


def stored_files(ctx: ProcessContext, folder: str) -> list[Path]:
    assert isinstance(ctx.storage, LocalStorage)
    where = ctx.storage.root / folder
    return list(where.iterdir()) if where.exists() else []


async def expire(ctx: ProcessContext, upload_id: str) -> None:
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == uuid.UUID(upload_id))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


async def test_an_upload_is_put_at_its_url_then_used_as_a_task_s_source(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "direct@example.com")
    before = utcnow()
    target = await create_upload(client, headers)
    assert target["method"] == "PUT"
    assert target["headers"] == {"Content-Type": "image/jpeg"}
    url = urlsplit(target["url"])
    assert url.path == f"/v1/uploads/{target['id']}/content"
    assert len(parse_qs(url.query)["token"][0]) >= 40
    lifetime = datetime.fromisoformat(target["expires_at"]) - before
    assert timedelta(hours=24) <= lifetime < timedelta(hours=24, minutes=1)

    waiting = await client.get(f"/v1/uploads/{target['id']}", headers=headers)
    assert waiting.json()["status"] == "waiting"
    put = await put_bytes(client, target, IMAGE)
    assert put.status_code == 204, put.text
    shown = (await client.get(f"/v1/uploads/{target['id']}", headers=headers)).json()
    assert shown["status"] == "received"
    assert (shown["content_type"], shown["bytes"]) == ("image/jpeg", len(IMAGE))

    body = {"source": {"upload": target["id"]}, "pipeline": GRAYSCALE}
    quote = await client.post("/v1/quotes", headers=headers, json=body)
    task = await submit_upload(client, headers, target["id"])
    assert task.status_code == 202, task.text
    assert task.json()["cost"] == quote.json()["cost"]
    assert await balance_of(client, headers) == 100 - task.json()["cost"]
    assert await drain_queue(ctx) == ["succeeded"]
    [source] = stored_files(ctx, "sources")
    assert source.read_bytes() == IMAGE
    # Usable again until it expires: a second pipeline on the same bytes.
    assert (await submit_upload(client, headers, target["id"])).status_code == 202


@pytest.mark.parametrize(
    ("body", "put_headers", "slug", "status"),
    [
        pytest.param(IMAGE + b"\0", {}, "upload-mismatch", 422, id="more-bytes"),
        pytest.param(IMAGE[:-1], {}, "upload-mismatch", 422, id="fewer-bytes"),
        pytest.param(IMAGE, {"Content-Type": "image/png"}, "upload-mismatch", 422, id="type"),
    ],
)
async def test_a_put_unlike_its_declaration_is_refused_and_leaves_nothing(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    body: bytes,
    put_headers: dict[str, str],
    slug: str,
    status: int,
) -> None:
    headers = await sign_up(client, "unlike@example.com")
    target = await create_upload(client, headers)
    assert_problem(await put_bytes(client, target, body, **put_headers), status, slug)
    assert stored_files(ctx, "uploads") == []
    assert stored_files(ctx, STAGING_DIR) == []
    shown = await client.get(f"/v1/uploads/{target['id']}", headers=headers)
    assert shown.json()["status"] == "waiting"
    # The honest PUT still works afterwards.
    assert (await put_bytes(client, target, IMAGE)).status_code == 204


async def test_the_token_is_the_credential_of_the_put(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "token@example.com")
    target = await create_upload(client, headers)
    other = await create_upload(client, headers)
    forged = target["url"].split("?")[0] + "?token=" + "A" * 43
    swapped = target["url"].split("?")[0] + "?" + urlsplit(other["url"]).query
    for url in (forged, swapped):
        response = await client.put(url, headers=target["headers"], content=IMAGE)
        assert_problem(response, 403, "upload-token-invalid")
    bare = target["url"].split("?")[0]
    missing = await client.put(bare, headers=target["headers"], content=IMAGE)
    assert missing.status_code == 422
    assert stored_files(ctx, "uploads") == []


async def test_an_upload_takes_its_bytes_once(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "once@example.com")
    target = await create_upload(client, headers)
    assert (await put_bytes(client, target, IMAGE)).status_code == 204
    other = image_bytes("JPEG", (320, 241))[: len(IMAGE)]
    assert_problem(await put_bytes(client, target, other), 409, "upload-already-received")
    [stored] = stored_files(ctx, "uploads")
    assert stored.read_bytes() == IMAGE


@pytest.mark.parametrize(
    ("declaration", "status", "field"),
    [
        pytest.param({"content_type": "text/html", "bytes": 10}, 422, "content_type", id="type"),
        pytest.param({"content_type": "image/png", "bytes": 0}, 422, "bytes", id="empty"),
        pytest.param({"content_type": "image/png"}, 422, "bytes", id="no-size"),
        pytest.param({"content_type": "image/png", "bytes": 10**9}, 413, "bytes", id="huge"),
    ],
)
async def test_a_declaration_out_of_bounds_is_refused(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    declaration: dict[str, Any],
    status: int,
    field: str,
) -> None:
    headers = await sign_up(client, "declared@example.com")
    response = await client.post("/v1/uploads", headers=headers, json=declaration)
    assert response.status_code == status, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_an_upload_needs_a_credential_to_create_and_to_read(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    declaration = {"content_type": "image/jpeg", "bytes": 10}
    assert (await client.post("/v1/uploads", json=declaration)).status_code == 401
    assert (await client.get(f"/v1/uploads/{uuid.uuid4()}")).status_code == 401


async def test_an_upload_without_its_bytes_is_not_a_source_and_nothing_is_charged(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "early@example.com")
    target = await create_upload(client, headers)
    assert_problem(await submit_upload(client, headers, target["id"]), 409, "upload-not-received")
    assert await balance_of(client, headers) == 100


async def test_bytes_that_are_not_the_declared_type_are_refused_when_used(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "forged@example.com")
    target = await create_upload(client, headers, "image/png")
    # The PUT can only check the header it is given; the bytes are a JPEG.
    assert (await put_bytes(client, target, IMAGE)).status_code == 204
    assert_problem(await submit_upload(client, headers, target["id"]), 422, "upload-mismatch")
    assert await balance_of(client, headers) == 100
    assert stored_files(ctx, "sources") == []


@pytest.mark.parametrize("declared", ["image/heic", "image/heif"])
async def test_a_phone_s_heic_declared_as_heic_or_heif_is_a_source(
    client: httpx.AsyncClient, ctx: ProcessContext, declared: str
) -> None:
    heic = (Path(__file__).parents[1] / "imaging" / "real_images" / "xiaomi.heic").read_bytes()
    headers = await sign_up(client, f"phone-{declared[6:]}@example.com")
    target = await create_upload(client, headers, declared, len(heic))
    assert (await put_bytes(client, target, heic)).status_code == 204

    assert (await submit_upload(client, headers, target["id"])).status_code == 202
    assert await drain_queue(ctx) == ["succeeded"]


@pytest.mark.both_backends
async def test_another_user_s_upload_is_not_found(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    owner = await sign_up(client, "upload-owner@example.com")
    target = await create_upload(client, owner)
    assert (await put_bytes(client, target, IMAGE)).status_code == 204
    stranger = await sign_up(client, "upload-stranger@example.com")
    assert_problem(await submit_upload(client, stranger, target["id"]), 404, "upload-not-found")
    shown = await client.get(f"/v1/uploads/{target['id']}", headers=stranger)
    assert_problem(shown, 404, "upload-not-found")
    assert await balance_of(client, stranger) == 100


@pytest.mark.both_backends
async def test_an_expired_upload_is_gone_and_its_bytes_are_purged(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "expired-upload@example.com")
    sent = await create_upload(client, headers)
    assert (await put_bytes(client, sent, IMAGE)).status_code == 204
    unsent = await create_upload(client, headers)
    kept = await create_upload(client, headers)
    assert (await put_bytes(client, kept, IMAGE)).status_code == 204
    await expire(ctx, sent["id"])
    await expire(ctx, unsent["id"])

    assert_problem(await submit_upload(client, headers, sent["id"]), 410, "source-expired")
    assert_problem(await put_bytes(client, unsent, IMAGE), 410, "upload-expired")
    assert await maintenance.purge_expired_files(ctx) == 2
    assert [path.name for path in stored_files(ctx, "uploads")] == [kept["id"]]
    for upload in (sent, unsent):
        shown = await client.get(f"/v1/uploads/{upload['id']}", headers=headers)
        assert shown.json()["status"] == "expired"
    assert await maintenance.purge_expired_files(ctx) == 0
    assert await balance_of(client, headers) == 100
