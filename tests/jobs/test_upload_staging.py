"""An image task's upload goes into storage as it arrives, and only an accepted one stays."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from pixelfleet.context import ProcessContext
from pixelfleet.storage import LocalStorage
from pixelfleet.storage.local import STAGING_DIR
from tests.api_helpers import balance_of, noise_png, sign_up, submit

BOUNDARY = "pixelfleet-test-boundary"
CHUNK = 64 * 1024


def _root(ctx: ProcessContext) -> Path:
    assert isinstance(ctx.storage, LocalStorage)
    return ctx.storage.root


def _staged(ctx: ProcessContext) -> list[Path]:
    staging = _root(ctx) / STAGING_DIR
    return list(staging.iterdir()) if staging.exists() else []


def _sources(ctx: ProcessContext) -> list[Path]:
    sources = _root(ctx) / "sources"
    return list(sources.iterdir()) if sources.exists() else []


def _multipart(image: bytes, pipeline: dict[str, object]) -> tuple[bytes, bytes, bytes]:
    """The body before the image's bytes, the image, and the body after them."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="pipeline"\r\n\r\n'
        f"{json.dumps(pipeline)}\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="photo.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head, image, f"\r\n--{BOUNDARY}--\r\n".encode()


async def test_an_upload_is_written_into_storage_before_its_last_byte_arrives(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "streamer@example.com")
    image = noise_png((400, 400))
    assert len(image) > 4 * CHUNK
    head, _, tail = _multipart(image, {"output": {"format": "png"}})
    staged_sizes: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        yield head
        for start in range(0, len(image), CHUNK):
            yield image[start : start + CHUNK]
            # The API asks for the next chunk only once it has handled this one.
            [staged] = _staged(ctx)
            staged_sizes.append(staged.stat().st_size)
        yield tail

    response = await client.post(
        "/v1/tasks",
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        content=body(),
    )
    assert response.status_code == 202, response.text
    # Each chunk was in the staged object before the next was sent, but for the few bytes at
    # its end that may begin the closing boundary (a chunk ending in `\r`, say): the parser
    # holds those until it sees what follows.
    sent = [min(end, len(image)) for end in range(CHUNK, len(image) + CHUNK, CHUNK)]
    held = len(f"\r\n--{BOUNDARY}")
    assert len(staged_sizes) == len(sent)
    assert all(end - held <= size <= end for size, end in zip(staged_sizes, sent, strict=True))
    [source] = _sources(ctx)
    assert source.read_bytes() == image
    assert response.json()["id"] == source.name
    assert _staged(ctx) == []


async def test_a_refused_upload_leaves_nothing_staged_or_stored(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.signup_credits = 2
    headers = await sign_up(client, "refused@example.com")
    not_an_image = await submit(client, headers, {}, b"plain text, not an image" * 1000)
    assert not_an_image.status_code == 415
    bad_pipeline = await submit(client, headers, {"operations": [{"op": "explode"}]})
    assert bad_pipeline.status_code == 422
    expensive = {"operations": [{"op": "grayscale"}, {"op": "flip"}], "output": {"format": "avif"}}
    too_dear = await submit(client, headers, expensive)
    assert too_dear.status_code == 402
    ctx.settings.max_upload_bytes = 50_000
    too_large = await submit(client, headers, {}, noise_png((200, 200)))
    assert too_large.status_code == 413
    assert _staged(ctx) == []
    assert _sources(ctx) == []
    assert await balance_of(client, headers) == 2


async def test_a_body_cut_off_mid_upload_leaves_nothing_staged(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "cut@example.com")
    image = noise_png((300, 300))
    head, _, _ = _multipart(image, {})

    async def body() -> AsyncIterator[bytes]:
        yield head
        yield image[:CHUNK]  # and then the body ends, the closing boundary never sent

    response = await client.post(
        "/v1/tasks",
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        content=body(),
    )
    assert response.status_code in {400, 422}, response.text
    assert _staged(ctx) == []
    assert _sources(ctx) == []


async def test_only_the_first_file_part_is_staged(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    """A body of many file parts holds one staged file, not one per part."""
    headers = await sign_up(client, "many-files@example.com")
    image = noise_png((64, 64))
    head, _, tail = _multipart(image, {})
    staged_while_sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        yield head + image + b"\r\n"
        for index in range(50):
            yield (
                f"--{BOUNDARY}\r\n"
                f'Content-Disposition: form-data; name="extra"; filename="junk{index}.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
                "junk\r\n"
            ).encode()
            staged_while_sent.append(len(_staged(ctx)))
        yield tail.removeprefix(b"\r\n")

    response = await client.post(
        "/v1/tasks",
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        content=body(),
    )
    assert response.status_code == 202, response.text
    assert set(staged_while_sent) == {1}
    [source] = _sources(ctx)
    assert source.read_bytes() == image
    assert _staged(ctx) == []
