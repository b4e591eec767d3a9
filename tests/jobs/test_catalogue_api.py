"""Every operation and output option of the catalogue, end to end through the API."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import httpx
import pytest
from PIL import Image

from pixelfleet.context import ProcessContext
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import balance_of, image_bytes, sign_up, submit

# (pipeline, expected output size) for a 640x480 JPEG.
OPERATION_CASES: dict[str, tuple[dict[str, Any], tuple[int, int]]] = {
    "resize": ({"op": "resize", "width": 320, "height": 320, "fit": "contain"}, (320, 320)),
    "resize-outside": ({"op": "resize", "width": 100, "height": 100, "fit": "outside"}, (133, 100)),
    "thumbnail": ({"op": "thumbnail", "width": 64, "height": 64}, (64, 48)),
    "crop-box": ({"op": "crop", "x": 10, "y": 20, "width": 100, "height": 50}, (100, 50)),
    "crop-attention": (
        {"op": "crop", "width": 200, "height": 200, "gravity": "attention"},
        (200, 200),
    ),
    "crop-entropy": ({"op": "crop", "width": 200, "height": 100, "gravity": "entropy"}, (200, 100)),
    "crop-face": ({"op": "crop", "width": 200, "height": 100, "gravity": "face"}, (200, 100)),
    "crop-focal-point": (
        {"op": "crop", "width": 100, "height": 100, "gravity": {"x": 0.8, "y": 0.2}},
        (100, 100),
    ),
    "resize-cover-gravity": (
        {"op": "resize", "width": 100, "height": 100, "fit": "cover", "gravity": "face"},
        (100, 100),
    ),
    "rotate": ({"op": "rotate", "angle": 90}, (480, 640)),
    "flip": ({"op": "flip", "direction": "vertical"}, (640, 480)),
    "flop": ({"op": "flop"}, (640, 480)),
    "auto_orient": ({"op": "auto_orient"}, (640, 480)),
    "grayscale": ({"op": "grayscale"}, (640, 480)),
    "blur": ({"op": "blur", "sigma": 2.5}, (640, 480)),
    "sharpen": ({"op": "sharpen", "sigma": 1, "amount": 1.5}, (640, 480)),
    "adjust": ({"op": "adjust", "brightness": 1.1, "contrast": 0.9, "saturation": 1.3}, (640, 480)),
    "pad": ({"op": "pad", "top": 10, "right": 20, "bottom": 30, "left": 40}, (700, 520)),
    "watermark": (
        {"op": "watermark", "text": "PixelFleet", "size": 24, "opacity": 0.5},
        (640, 480),
    ),
}


@pytest.fixture
async def account(client: httpx.AsyncClient, ctx: ProcessContext) -> dict[str, str]:
    ctx.settings.signup_credits = 1000
    return await sign_up(client, "catalogue@example.com")


async def _run(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    headers: dict[str, str],
    pipeline: dict[str, Any],
    image: bytes,
) -> tuple[dict[str, Any], bytes]:
    response = await submit(client, headers, pipeline, image)
    assert response.status_code == 202, response.text
    await drain_queue(ctx)
    task: dict[str, Any] = (
        await client.get(f"/v1/tasks/{response.json()['id']}", headers=headers)
    ).json()
    assert task["status"] == "succeeded", task
    result = await client.get(f"/v1/tasks/{task['id']}/result", headers=headers)
    return task, result.content


@pytest.mark.parametrize("case", sorted(OPERATION_CASES))
async def test_each_operation_of_the_catalogue_runs(
    client: httpx.AsyncClient, ctx: ProcessContext, account: dict[str, str], case: str
) -> None:
    operation, size = OPERATION_CASES[case]
    task, data = await _run(
        client,
        ctx,
        account,
        {"operations": [operation], "output": {"format": "png"}},
        image_bytes("JPEG", (640, 480)),
    )
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == size == (task["result"]["width"], task["result"]["height"])


def _oriented_photo() -> bytes:
    """A 400x200 JPEG whose EXIF says: rotate 90 degrees clockwise to view."""
    image = Image.new("RGB", (400, 200), "white")
    image.paste((255, 0, 0), (0, 0, 200, 200))  # the left half is red
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


async def test_photos_come_out_upright_and_without_metadata(
    client: httpx.AsyncClient, ctx: ProcessContext, account: dict[str, str]
) -> None:
    _, data = await _run(client, ctx, account, {"output": {"format": "jpeg"}}, _oriented_photo())
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (200, 400)
        assert image.getpixel((100, 50))[0] > 200 > image.getpixel((100, 50))[1]  # red on top
        assert len(image.getexif()) == 0
        assert "icc_profile" not in image.info


@pytest.mark.parametrize(
    ("output", "check"),
    [
        ({"format": "jpeg", "progressive": True}, lambda image: image.info.get("progressive") == 1),
        ({"format": "webp", "lossless": True}, lambda image: image.format == "WEBP"),
        ({"format": "gif"}, lambda image: image.format == "GIF"),
        ({"format": "png", "progressive": True}, lambda image: image.info.get("interlace") == 1),
        ({"format": "avif", "quality": 50}, lambda image: image.format == "AVIF"),
    ],
)
async def test_output_options_reach_the_file(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    account: dict[str, str],
    output: dict[str, Any],
    check: Any,
) -> None:
    _, data = await _run(client, ctx, account, {"output": output}, image_bytes("JPEG", (320, 240)))
    with Image.open(io.BytesIO(data)) as image:
        assert check(image), image.info


async def test_max_bytes_finds_a_quality_that_fits(
    client: httpx.AsyncClient, ctx: ProcessContext, account: dict[str, str]
) -> None:
    task, data = await _run(
        client,
        ctx,
        account,
        {"output": {"format": "jpeg", "max_bytes": 12_000}},
        image_bytes("JPEG", (640, 480)),
    )
    assert len(data) <= 12_000
    assert task["result"]["bytes"] == len(data)


async def test_a_header_that_lies_about_the_size_fails_the_task_with_a_refund(
    client: httpx.AsyncClient, ctx: ProcessContext, account: dict[str, str]
) -> None:
    # A PNG header that claims 2000x2000, followed by the pixels of a 10x10 image.
    raw = b"".join(b"\x00" + b"\x80" * 30 for _ in range(10))
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 2000, 2000, 8, 2, 0, 0, 0)
    idat = b"IDAT" + zlib.compress(raw)
    liar = b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
        for chunk in (ihdr, idat, b"IEND")
    )
    before = await balance_of(client, account)
    response = await submit(client, account, {"output": {"format": "png"}}, liar)
    assert response.status_code == 202, response.text
    assert await drain_queue(ctx) == ["failed"]
    task = (await client.get(f"/v1/tasks/{response.json()['id']}", headers=account)).json()
    assert task["status"] == "failed"
    assert task["error"]["code"] == "processing-failed"
    assert await balance_of(client, account) == before


async def test_limit_refusals_name_the_limit(
    client: httpx.AsyncClient, ctx: ProcessContext, account: dict[str, str]
) -> None:
    ctx.settings.max_source_pixels = 100_000
    too_big = await submit(client, account, {}, image_bytes("JPEG", (640, 480)))
    assert too_big.status_code == 422
    assert "max_source_pixels" in too_big.json()["detail"]
    ctx.settings.max_operations = 2
    too_many = await submit(
        client, account, {"operations": [{"op": "flop"}] * 3}, image_bytes("JPEG", (32, 32))
    )
    assert too_many.status_code == 422
    assert "max_operations" in too_many.text
