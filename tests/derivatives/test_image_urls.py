"""Derivative URLs: an account signs a URL binding one of its stored images to one of its
presets; the first read makes the image (charged once), every later read is served from storage
as immutable; a changed URL, a rotated key or a changed preset ends it."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import update

from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.derivatives.urls import DeliveryKeys
from pixelfleet.jobs import maintenance
from pixelfleet.models import Task, User
from pixelfleet.storage import LocalStorage
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import (
    PROBLEM,
    balance_of,
    image_bytes,
    sign_up,
    submit,
    truncated_jpeg,
    whole_ledger,
)

THUMB = {
    "operations": [{"op": "thumbnail", "width": 120, "height": 120}],
    "output": {"format": "webp"},
}
THUMB_PRICE = 1 + 1 + 1  # a task, a thumbnail, a WebP
AUTO = {"operations": [{"op": "resize", "width": 100}], "output": {"format": "auto"}}
IMMUTABLE = "public, max-age=31536000, immutable"



async def _account(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    """An account with an asset, and presets `thumb` (WebP) and `any` (format auto)."""
    headers = await sign_up(client, email)
    asset = await client.post(
        "/v1/assets",
        headers=headers,
        files={"file": ("photo.jpg", image_bytes("JPEG", (480, 360)), "image/jpeg")},
    )
    assert asset.status_code == 201, asset.text
    for name, pipeline in [("thumb", THUMB), ("any", AUTO)]:
        saved = await client.put(
            f"/v1/presets/{name}", headers=headers, json={"pipeline": pipeline}
        )
        assert saved.status_code in (200, 201), saved.text
    return {"headers": headers, "asset": asset.json()["id"]}


async def _url(
    client: httpx.AsyncClient, account: dict[str, Any], preset: str = "thumb", **source: str
) -> str:
    body = {"source": source or {"asset": account["asset"]}, "preset": preset}
    made = await client.post("/v1/image-urls", headers=account["headers"], json=body)
    assert made.status_code == 201, made.text
    url: str = made.json()["url"]
    assert url.startswith("/v1/images/")
    return url


def _debits(ledger: list[dict[str, Any]]) -> list[int]:
    return [entry["amount"] for entry in ledger if entry["kind"] == "task_debit"]


async def test_the_first_read_makes_the_image_and_every_later_read_is_served_as_immutable(
    client: httpx.AsyncClient, worker: None
) -> None:
    account = await _account(client, "derive@example.com")
    url = await _url(client, account)
    before = await balance_of(client, account["headers"])

    first = await client.get(url)  # no credential: a page's <img src>
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/webp"
    assert first.headers["cache-control"] == IMMUTABLE
    assert "vary" not in first.headers
    with Image.open(io.BytesIO(first.content)) as image:
        assert (image.format, image.size) == ("WEBP", (120, 90))

    again = await client.get(url)
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["etag"] == first.headers["etag"]
    current = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert (current.status_code, current.headers["cache-control"]) == (304, IMMUTABLE)
    ranged = await client.get(url, headers={"Range": "bytes=0-9"})
    assert (ranged.status_code, ranged.content) == (206, first.content[:10])

    # Charged once, the preset's price; the task that made it is the account's like any other.
    assert _debits(await whole_ledger(client, account["headers"])) == [-THUMB_PRICE]
    assert await balance_of(client, account["headers"]) == before - THUMB_PRICE
    tasks = (await client.get("/v1/tasks", headers=account["headers"])).json()["items"]
    assert [(t["source"]["kind"], t["source"]["ref"]) for t in tasks] == [
        ("asset", account["asset"])
    ]


async def test_a_task_source_can_be_named_and_a_url_or_upload_cannot(
    client: httpx.AsyncClient, ctx: ProcessContext, worker: None
) -> None:
    account = await _account(client, "task-source@example.com")
    task = await submit(client, account["headers"], {"operations": [{"op": "flip"}]})
    url = await _url(client, account, task=task.json()["id"])
    answer = await client.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/webp"
    for source in ({"url": "https://images.example/a.jpg"}, {"upload": task.json()["id"]}):
        refused = await client.post(
            "/v1/image-urls", headers=account["headers"], json={"source": source, "preset": "thumb"}
        )
        assert refused.status_code == 422, refused.text


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        pytest.param({"preset": "nothing"}, 422, "preset", id="no-such-preset"),
        pytest.param({"preset": "sizes"}, 422, "preset", id="a-preset-of-several-outputs"),
        pytest.param({"source": {"asset": "0" * 8 + "-0000-4000-8000-" + "0" * 12}}, 404, None,
                     id="no-such-asset"),
    ],
)
async def test_a_url_is_signed_only_for_ones_own_source_and_a_one_output_preset(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, field: str | None
) -> None:
    account = await _account(client, "signing@example.com")
    variants = {"variants": [{"name": "a"}, {"name": "b"}]}
    await client.put("/v1/presets/sizes", headers=account["headers"], json={"pipeline": variants})
    request = {"source": {"asset": account["asset"]}, "preset": "thumb", **body}
    refused = await client.post("/v1/image-urls", headers=account["headers"], json=request)
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == PROBLEM
    if field is not None:
        assert [error["field"] for error in refused.json()["errors"]] == [field]


async def test_another_accounts_asset_cannot_be_signed(client: httpx.AsyncClient) -> None:
    owner = await _account(client, "owner@example.com")
    other = await _account(client, "other@example.com")
    body = {"source": {"asset": owner["asset"]}, "preset": "thumb"}
    refused = await client.post("/v1/image-urls", headers=other["headers"], json=body)
    assert refused.status_code == 404


def _refused(answer: httpx.Response, slug: str, status: int = 403) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"].endswith(f"/{slug}")


async def test_a_changed_url_a_rotated_key_or_a_changed_preset_ends_it(
    client: httpx.AsyncClient, worker: None
) -> None:
    account = await _account(client, "rotate@example.com")
    url = await _url(client, account)
    assert (await client.get(url)).status_code == 200
    token = url.removeprefix("/v1/images/")
    header, payload, signature = token.split(".")
    for changed in (
        f"{header}.{payload}.{signature[:-4]}AAAA",
        f"{header}.{payload[:-2]}xx.{signature}",
        "not-a-token",
    ):
        _refused(await client.get(f"/v1/images/{changed}"), "image-url-invalid")

    rotated = await client.post("/v1/me/delivery-key/rotate", headers=account["headers"])
    assert rotated.status_code == 200, rotated.text
    _refused(await client.get(url), "image-url-invalid")
    fresh = await _url(client, account)
    assert fresh != url
    before = await balance_of(client, account["headers"])
    assert (await client.get(fresh)).status_code == 200  # made already: not charged again
    assert await balance_of(client, account["headers"]) == before

    changed_preset = {**THUMB, "output": {"format": "png"}}
    await client.put(
        "/v1/presets/thumb", headers=account["headers"], json={"pipeline": changed_preset}
    )
    _refused(await client.get(fresh), "image-url-stale", 410)


async def test_an_account_without_credits_is_refused_only_a_first_read(
    client: httpx.AsyncClient, ctx: ProcessContext, worker: None
) -> None:
    account = await _account(client, "broke@example.com")
    made = await _url(client, account)
    assert (await client.get(made)).status_code == 200
    other_format = await _url(client, account, preset="any")
    async with ctx.sessions.begin() as session:
        await session.execute(update(User).values(balance=0))
    assert (await client.get(made)).status_code == 200  # a stored one is never refused
    refused = await client.get(other_format)
    _refused(refused, "insufficient-credits", 402)


async def test_an_auto_preset_is_made_and_charged_once_per_format_a_reader_is_sent(
    client: httpx.AsyncClient, worker: None
) -> None:
    account = await _account(client, "auto-derive@example.com")
    url = await _url(client, account, preset="any")
    readers = [
        ("image/avif,image/webp,*/*", "image/avif"),
        ("image/webp,*/*", "image/webp"),
        ("*/*", "image/jpeg"),
        ("image/avif,image/webp,*/*", "image/avif"),
    ]
    for accept, expected in readers:
        answer = await client.get(url, headers={"Accept": accept})
        assert answer.status_code == 200, answer.text
        assert (answer.headers["content-type"], answer.headers["vary"]) == (expected, "Accept")
    # One derivative per format, each at the price of the preset in that format.
    resize = 1 + 1
    assert sorted(_debits(await whole_ledger(client, account["headers"]))) == [
        -(resize + 2),
        -(resize + 1),
        -(resize + 0),
    ]


async def test_past_the_time_budget_a_read_is_asked_to_come_back_and_is_not_charged_twice(
    client: httpx.AsyncClient, ctx: ProcessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await _account(client, "slow@example.com")
    url = await _url(client, account)
    monkeypatch.setattr(ctx.settings, "derive_timeout_seconds", 0.01)
    for _ in range(2):  # no worker yet: the image cannot be ready
        waiting = await client.get(url)
        _refused(waiting, "image-not-ready", 503)
        assert int(waiting.headers["retry-after"]) > 0
    assert await drain_queue(ctx) == ["succeeded"]
    assert (await client.get(url)).status_code == 200
    assert _debits(await whole_ledger(client, account["headers"])) == [-THUMB_PRICE]


async def test_an_image_that_cannot_be_made_is_refused_and_nothing_is_kept_charged(
    client: httpx.AsyncClient, worker: None
) -> None:
    account = await _account(client, "cannot@example.com")
    outside = {"operations": [{"op": "crop", "width": 100, "height": 100, "x": 5000, "y": 0}]}
    await client.put("/v1/presets/outside", headers=account["headers"], json={"pipeline": outside})
    # A cut-off JPEG: its header is whole, so only decoding finds what is missing.
    broken = await submit(client, account["headers"], {"operations": []}, truncated_jpeg())
    assert broken.status_code == 202, broken.text
    await until_final(client, account["headers"], broken.json()["id"])
    before = await balance_of(client, account["headers"])

    # Foreseen from the header: refused before any task, as a submission would be.
    impossible = await client.get(await _url(client, account, preset="outside"))
    assert impossible.status_code == 422, impossible.text
    # Found only by decoding: the task that tried failed, was refunded, and says why.
    undecodable = await _url(client, account, task=broken.json()["id"])
    for _ in range(2):
        _refused(await client.get(undecodable), "image-derive-failed", 422)
    assert await balance_of(client, account["headers"]) == before
    tasks = (await client.get("/v1/tasks", headers=account["headers"])).json()["items"]
    # The derivative was tried once, not on every read.
    assert [task["status"] for task in tasks] == ["failed", "failed"]


async def until_final(client: httpx.AsyncClient, headers: dict[str, str], task_id: str) -> None:
    while True:
        task = await client.get(f"/v1/tasks/{task_id}", params={"wait": 5}, headers=headers)
        if task.json()["status"] in {"succeeded", "failed", "cancelled"}:
            return


@pytest.mark.both_backends
async def test_many_first_reads_at_once_make_and_charge_the_image_once(
    client: httpx.AsyncClient, ctx: ProcessContext, worker: None
) -> None:
    account = await _account(client, "race@example.com")
    url = await _url(client, account)
    before = await balance_of(client, account["headers"])
    answers = await asyncio.gather(*(client.get(url) for _ in range(12)))
    assert [answer.status_code for answer in answers] == [200] * 12
    assert len({answer.content for answer in answers}) == 1
    assert _debits(await whole_ledger(client, account["headers"])) == [-THUMB_PRICE]
    assert await balance_of(client, account["headers"]) == before - THUMB_PRICE
    tasks = (await client.get("/v1/tasks", headers=account["headers"])).json()["items"]
    assert len(tasks) == 1
    # The reads that lost the race stored a source each, and took it back.
    assert isinstance(ctx.storage, LocalStorage)
    assert [path.name for path in (ctx.storage.root / "sources").iterdir()] == [tasks[0]["id"]]


async def test_a_derivative_follows_retention_and_is_made_anew_once_deleted(
    client: httpx.AsyncClient, ctx: ProcessContext, worker: None
) -> None:
    account = await _account(client, "retention@example.com")
    url = await _url(client, account)
    first = await client.get(url)
    assert first.status_code == 200
    head = await client.head(url)
    assert (head.status_code, head.headers["etag"]) == (200, first.headers["etag"])
    assert head.content == b""
    async with ctx.sessions.begin() as session:
        await session.execute(update(Task).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert await maintenance.purge_expired_files(ctx) == 1

    again = await client.get(url)  # its file is gone: made again, and charged again
    assert again.status_code == 200, again.text
    assert again.headers["etag"] != first.headers["etag"]
    assert _debits(await whole_ledger(client, account["headers"])) == [-THUMB_PRICE] * 2


async def test_under_a_public_address_the_url_is_absolute(
    client: httpx.AsyncClient, ctx: ProcessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ctx.settings.model_copy(update={"public_url": "https://img.example/"})
    monkeypatch.setattr(ctx, "delivery_keys", DeliveryKeys(settings))
    account = await _account(client, "public@example.com")
    body = {"source": {"asset": account["asset"]}, "preset": "thumb"}
    made = await client.post("/v1/image-urls", headers=account["headers"], json=body)
    assert made.json()["url"].startswith("https://img.example/v1/images/")
