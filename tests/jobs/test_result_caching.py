"""A result answers as an immutable download should: a strong `ETag`, `Last-Modified`,
`Cache-Control`, conditional requests (304), one byte range (206, or 416 past the end), and
`HEAD`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import httpx
import pytest

from pixelfleet.context import ProcessContext
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import PROBLEM, noise_png, sign_up, submit

PIPELINE = {
    "operations": [{"op": "resize", "width": 200}],
    "variants": [
        {"name": "png", "output": {"format": "png"}},
        {"name": "webp", "output": {"format": "webp"}},
    ],
}


@pytest.fixture
async def finished(client: httpx.AsyncClient, ctx: ProcessContext) -> dict[str, Any]:
    """A finished task with two outputs, its owner's headers, and the first output's bytes."""
    headers = await sign_up(client, "cache@example.com")
    task = (await submit(client, headers, PIPELINE, noise_png((400, 300)))).json()
    assert await drain_queue(ctx) == ["succeeded"]
    url = f"/v1/tasks/{task['id']}/result"
    whole = await client.get(url, headers=headers)
    assert whole.status_code == 200, whole.text
    return {"headers": headers, "url": url, "whole": whole}


async def get(
    client: httpx.AsyncClient, finished: dict[str, Any], **extra: str
) -> httpx.Response:
    return await client.get(finished["url"], headers={**finished["headers"], **extra})


async def test_a_result_carries_strong_validators_and_may_be_kept_privately(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    whole: httpx.Response = finished["whole"]
    etag = whole.headers["etag"]
    assert etag[0] == etag[-1] == '"'  # a strong tag: not W/"..."
    modified = parsedate_to_datetime(whole.headers["last-modified"])
    assert datetime.now(UTC) - timedelta(minutes=5) < modified <= datetime.now(UTC)
    assert whole.headers["accept-ranges"] == "bytes"
    kept, max_age = whole.headers["cache-control"].split(", ")
    assert kept == "private"
    assert 0 < int(max_age.removeprefix("max-age=")) <= 7 * 24 * 3600  # until it is deleted
    assert int(whole.headers["content-length"]) == len(whole.content)
    # Each output is its own entity; the same output answers the same tag every time.
    webp = await client.get(finished["url"] + "?variant=webp", headers=finished["headers"])
    assert webp.headers["etag"] != etag
    assert (await get(client, finished)).headers["etag"] == etag


@pytest.mark.parametrize(
    "condition",
    [
        pytest.param(lambda etag, modified: {"If-None-Match": etag}, id="its-tag"),
        pytest.param(
            lambda etag, modified: {"If-None-Match": f'"other", W/{etag}'}, id="weakly-in-a-list"
        ),
        pytest.param(lambda etag, modified: {"If-None-Match": "*"}, id="any"),
        pytest.param(lambda etag, modified: {"If-Modified-Since": modified}, id="not-since"),
    ],
)
async def test_a_current_copy_is_answered_304_without_a_body(
    client: httpx.AsyncClient, finished: dict[str, Any], condition: Any
) -> None:
    whole: httpx.Response = finished["whole"]
    asked = condition(whole.headers["etag"], whole.headers["last-modified"])
    answer = await get(client, finished, **asked)
    assert answer.status_code == 304
    assert answer.content == b""
    assert answer.headers["etag"] == whole.headers["etag"]


@pytest.mark.parametrize(
    "condition",
    [
        pytest.param({"If-None-Match": '"something-else"'}, id="another-tag"),
        pytest.param(
            {"If-Modified-Since": format_datetime(datetime(2020, 1, 1, tzinfo=UTC), usegmt=True)},
            id="modified-since",
        ),
        pytest.param({"If-Modified-Since": "yesterday"}, id="not-a-date"),
    ],
)
async def test_a_stale_or_unreadable_condition_gets_the_whole_image(
    client: httpx.AsyncClient, finished: dict[str, Any], condition: dict[str, str]
) -> None:
    answer = await get(client, finished, **condition)
    assert answer.status_code == 200
    assert answer.content == finished["whole"].content


async def test_one_byte_range_is_answered_206_with_those_bytes(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    data: bytes = finished["whole"].content
    size = len(data)
    for asked, start, end in [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, size - 1),
        ("bytes=-50", size - 50, size - 1),
        (f"bytes=10-{size + 500}", 10, size - 1),  # past the end: up to the end
    ]:
        answer = await get(client, finished, Range=asked)
        assert answer.status_code == 206, asked
        assert answer.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert answer.content == data[start : end + 1], asked
        assert int(answer.headers["content-length"]) == end + 1 - start


async def test_a_range_past_the_end_is_a_416_problem(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    size = len(finished["whole"].content)
    answer = await get(client, finished, Range=f"bytes={size}-")
    assert answer.status_code == 416
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"].endswith("/range-not-satisfiable")
    assert answer.headers["content-range"] == f"bytes */{size}"


@pytest.mark.parametrize("asked", ["bytes=0-1,5-9", "pages=1-2", "bytes=9-3", "bytes=-"])
async def test_a_range_this_does_not_serve_gets_the_whole_image(
    client: httpx.AsyncClient, finished: dict[str, Any], asked: str
) -> None:
    answer = await get(client, finished, Range=asked)
    assert answer.status_code == 200
    assert answer.content == finished["whole"].content


async def test_if_range_keeps_a_range_only_for_the_same_image(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    whole: httpx.Response = finished["whole"]
    same = await get(client, finished, Range="bytes=0-9", **{"If-Range": whole.headers["etag"]})
    assert same.status_code == 206
    dated = await get(
        client, finished, Range="bytes=0-9", **{"If-Range": whole.headers["last-modified"]}
    )
    assert dated.status_code == 206
    other = await get(client, finished, Range="bytes=0-9", **{"If-Range": '"another"'})
    assert other.status_code == 200
    assert other.content == whole.content


async def test_head_answers_the_headers_alone(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    whole: httpx.Response = finished["whole"]
    head = await client.head(finished["url"], headers=finished["headers"])
    assert head.status_code == 200
    assert head.content == b""
    for name in ("etag", "last-modified", "content-type", "content-length", "cache-control"):
        assert head.headers[name] == whole.headers[name], name
    ranged_headers = {**finished["headers"], "Range": "bytes=0-9"}
    ranged = await client.head(finished["url"], headers=ranged_headers)
    assert (ranged.status_code, ranged.headers["content-length"]) == (206, "10")
