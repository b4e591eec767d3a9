"""Hostile images, made here (nothing downloaded): each is refused before any work with a precise
4xx problem, or accepted and then either processed or failed cleanly with its credits back. No
answer is a 5xx, no worker call raises, no credit is lost. The last test prints what each image
got; the run's end prints the hardening tally."""

from __future__ import annotations

import io
import json
import struct
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from pixelfleet.context import ProcessContext
from pixelfleet.jobs.processing import process_task
from tests.api_helpers import PROBLEM, balance_of, sign_up, whole_ledger
from tests.hardening.tally import TALLY
from tests.harness.embedded import RunningPlatform, pixelfleet_up
from tests.live_api import sign_in, submit, wait_final

PIPELINE = json.dumps({"operations": [{"op": "resize", "width": 64}], "output": {"format": "png"}})
REFUSALS = {400, 413, 415, 422}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`x`height` over a few bytes of data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(_saved(Image.new("RGB", (16, 16), (90, 30, 200)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + canvas
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def avif_claiming(width: int, height: int) -> bytes:
    """A real AVIF whose ispe box (the image's spatial extents) claims `width`x`height`."""
    data = bytearray(_saved(Image.new("RGB", (16, 16), (200, 40, 40)), "AVIF"))
    ispe = data.index(b"ispe")
    data[ispe + 8 : ispe + 16] = struct.pack(">II", width, height)
    return bytes(data)


def png_with_text_bomb() -> bytes:
    """A small PNG carrying a zTXt chunk that inflates to 64 MiB."""
    plain = _saved(Image.new("RGB", (8, 8)), "PNG")
    bomb = _chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * (64 << 20), 9))
    end = plain.index(b"IEND") - 4
    return plain[:end] + bomb + plain[end:]


def gif_with_frames(count: int) -> bytes:
    # Each frame differs from the one before, or the encoder would merge them.
    frames = [Image.new("RGB", (2, 2), (index % 256, index // 256, 0)) for index in range(count)]
    return _saved(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)


def jpeg_with_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return _saved(Image.new("RGB", (40, 20), (10, 200, 10)), "JPEG", exif=exif.tobytes())


def truncated_png() -> bytes:
    whole = _saved(Image.effect_noise((256, 256), 60).convert("RGB"), "PNG")
    return whole[: len(whole) // 2]


def corrupt_jpeg() -> bytes:
    whole = bytearray(_saved(Image.effect_noise((128, 128), 60).convert("RGB"), "JPEG"))
    start = whole.index(b"\xff\xda") + 20
    whole[start : start + 400] = bytes(range(256)) + bytes(144)
    return bytes(whole)


def corrupt_lzw_tiff() -> bytes:
    """An LZW-compressed TIFF whose strips are scrambled: libtiff (not Python) decodes it, and
    complains on file descriptor 2 ("Using code not yet in table")."""
    whole = bytearray(
        _saved(Image.effect_noise((64, 64), 60).convert("RGB"), "TIFF", compression="tiff_lzw")
    )
    for at in range(100, len(whole) // 2):
        whole[at] ^= 0x5A
    return bytes(whole)


def jpeg_with_corrupt_exif() -> bytes:
    """A JPEG whose EXIF block points a tag's value past its end: Pillow warns (through
    Python's `warnings`) while reading the orientation."""
    ifd = struct.pack("<2sHI", b"II", 42, 8) + struct.pack("<H", 2)
    ifd += struct.pack("<HHI", 0x0112, 3, 1) + struct.pack("<HH", 1, 0)  # orientation 1
    ifd += struct.pack("<HHII", 0x010F, 2, 20, 38)  # Make: 20 bytes at 38, of 8 left
    ifd += struct.pack("<I", 0) + b"truncat"
    image = Image.new("RGB", (40, 20), (10, 200, 10))
    return _saved(image, "JPEG", exif=b"Exif\x00\x00" + ifd)


def gif_with_a_frame_reaching(width: int, height: int) -> bytes:
    """A 10x10 GIF whose second frame's descriptor reaches `width` x `height` (its data is a
    few bytes): the decoder grows the canvas for it, if let."""
    small = Image.new("P", (10, 10), 1)
    small.putpalette([0, 0, 0, 255, 0, 0] * 128)
    first = _saved(small, "GIF", save_all=True, append_images=[small.copy()], duration=100)
    descriptor = b"," + struct.pack("<HHHH", 0, 0, width, height) + b"\x00"
    return first[:-1] + descriptor + b"\x08\x02\x00\x01\x00;"


def polyglot_png_zip() -> bytes:
    return _saved(Image.new("RGB", (32, 32), (1, 2, 3)), "PNG") + b"PK\x03\x04" + b"\x00" * 200


ATTACKS: dict[str, Callable[[], bytes]] = {
    "png header claiming 100000x100000": lambda: png_claiming(100_000, 100_000),
    "png header claiming 65535x65535": lambda: png_claiming(65_535, 65_535),
    "jpeg header claiming 65500x65500": lambda: jpeg_claiming(65_500, 65_500),
    "webp header claiming 16383x16383": lambda: webp_claiming(16_383, 16_383),
    "webp header claiming 8000x8000": lambda: webp_claiming(8000, 8000),
    "avif header claiming 17000x17000": lambda: avif_claiming(17_000, 17_000),
    "png with a 64 MiB zTXt bomb": png_with_text_bomb,
    "truncated png": truncated_png,
    "corrupt jpeg scan data": corrupt_jpeg,
    "html named .jpg": lambda: b"<html><script>alert(1)</script></html>",
    "svg with a script": lambda: (
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    ),
    "png with a zip appended (polyglot)": polyglot_png_zip,
    "lzw tiff with scrambled strips": corrupt_lzw_tiff,
    "jpeg with a corrupt exif block": jpeg_with_corrupt_exif,
    "exif orientation 9999": lambda: jpeg_with_orientation(9999),
    "exif orientation 0": lambda: jpeg_with_orientation(0),
    "gif with 3000 frames": lambda: gif_with_frames(3000),
    "gif frame reaching 15000x15000 past a 10x10 screen": lambda: gif_with_a_frame_reaching(
        15_000, 15_000
    ),
    "gif frame reaching 2000x2000 past a 10x10 screen": lambda: gif_with_a_frame_reaching(
        2000, 2000
    ),
    "heic whose container is damaged": lambda: (
        Path(__file__).parents[1] / "imaging" / "real_images" / "corrupted.heic"
    ).read_bytes(),
    "heic of 200 megapixels": lambda: (
        Path(__file__).parents[1] / "imaging" / "real_images" / "200MP.heic"
    ).read_bytes(),
    "1x1 png": lambda: _saved(Image.new("RGB", (1, 1)), "PNG"),
    "65535x1 png": lambda: _saved(Image.new("L", (65_535, 1)), "PNG"),
    "cmyk jpeg": lambda: _saved(Image.new("CMYK", (48, 32), (0, 255, 0, 10)), "JPEG"),
    "16-bit png": lambda: _saved(Image.new("I;16", (48, 32), 40_000), "PNG"),
    "palette png": lambda: _saved(Image.new("P", (48, 32), 7), "PNG"),
    "grey with alpha png": lambda: _saved(Image.new("LA", (48, 32), (100, 50)), "PNG"),
}


@dataclass
class ImageTally:
    tried: int = 0
    server_errors: list[str] = field(default_factory=list)
    credits_lost: int = 0
    answers: dict[str, str] = field(default_factory=dict)


IMAGES = ImageTally()


@pytest.fixture
def backend() -> str:
    """One backend is enough: this is about images, not about the database."""
    return "sqlite"


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_hostile_image_is_refused_or_fails_cleanly_with_its_credits_back(
    client: httpx.AsyncClient, ctx: ProcessContext, attack: str
) -> None:
    headers = await sign_up(client, f"attacker-{uuid.uuid4().hex[:8]}@example.com")
    data = ATTACKS[attack]()
    IMAGES.tried += 1
    response = TALLY.attack(
        "images",
        attack,
        await client.post(
            "/v1/tasks",
            headers=headers,
            files={"file": ("photo.jpg", data, "image/jpeg")},
            data={"pipeline": PIPELINE},
        ),
    )
    if response.status_code >= 500:
        IMAGES.server_errors.append(attack)
    if response.status_code != 202:
        IMAGES.answers[attack] = f"refused {response.status_code}"
        assert response.status_code in REFUSALS, (attack, response.status_code, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["detail"]
        assert await balance_of(client, headers) == 100
        return

    task = response.json()
    outcome = await process_task(ctx, uuid.UUID(task["id"]), "attack-worker")  # never raises
    final = (await client.get(f"/v1/tasks/{task['id']}", headers=headers)).json()
    IMAGES.answers[attack] = f"accepted, {outcome}"
    assert outcome in {"succeeded", "failed"}, (attack, outcome)
    assert final["status"] == outcome
    balance = await balance_of(client, headers)
    expected = 100 - task["cost"] if outcome == "succeeded" else 100
    IMAGES.credits_lost += max(0, expected - balance)
    TALLY.credits_lost += max(0, expected - balance)
    assert balance == expected, attack
    if outcome == "failed":
        assert final["error"]["code"], attack
        assert final["error"]["message"], attack
        refunds = [e for e in await whole_ledger(client, headers) if e["kind"] == "task_refund"]
        assert len(refunds) == 1
    else:
        result = await client.get(f"/v1/tasks/{task['id']}/result", headers=headers)
        assert result.status_code == 200
        assert b"PK\x03\x04" not in result.content  # a fresh encoding: nothing smuggled through
        with Image.open(io.BytesIO(result.content)) as image:
            assert image.format == "PNG"


@pytest.mark.parametrize(
    "claim",
    [
        lambda: avif_claiming(17_000, 17_000),
        lambda: avif_claiming(40_000, 2_000),
        lambda: webp_claiming(8000, 8000),
        lambda: jpeg_claiming(17_000, 17_000),
        lambda: png_claiming(8000, 8000),
    ],
    ids=["avif-17000-square", "avif-40000-wide", "webp-8000-square", "jpeg", "png"],
)
async def test_a_header_claiming_too_many_pixels_is_refused_for_its_pixels(
    client: httpx.AsyncClient, claim: Callable[[], bytes]
) -> None:
    headers = await sign_up(client, f"claims-{uuid.uuid4().hex[:8]}@example.com")

    response = await client.post(
        "/v1/tasks",
        headers=headers,
        files={"file": ("photo", claim(), "application/octet-stream")},
        data={"pipeline": PIPELINE},
    )

    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/image-too-many-pixels")
    assert "(max_source_pixels)" in response.json()["detail"]
    assert await balance_of(client, headers) == 100


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_hostile_image_is_refused_as_an_asset_or_stored_as_its_image_alone(
    client: httpx.AsyncClient, ctx: ProcessContext, attack: str
) -> None:
    headers = await sign_up(client, f"asset-attacker-{uuid.uuid4().hex[:8]}@example.com")
    response = TALLY.attack(
        "asset images",
        attack,
        await client.post(
            "/v1/assets", headers=headers, files={"file": ("logo.png", ATTACKS[attack]())}
        ),
    )
    if response.status_code != 201:
        assert response.status_code in REFUSALS, (attack, response.status_code, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert (await client.get("/v1/assets", headers=headers)).json()["items"] == []
        return
    asset = response.json()
    stored = await ctx.storage.get(f"assets/{asset['id']}")
    assert len(stored) == asset["bytes"]
    assert b"PK\x03\x04" not in stored  # what was appended is not kept
    with Image.open(io.BytesIO(stored)) as image:
        assert image.size == (asset["width"], asset["height"])


def test_every_image_attack_was_answered_without_a_server_error_or_lost_credit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert IMAGES.tried == len(ATTACKS)
    with capsys.disabled():
        for attack, answer in IMAGES.answers.items():
            print(f"\n  {attack:<40} {answer}", end="")
        print(
            f"\nimages: {IMAGES.tried} attacks tried, {len(IMAGES.server_errors)} server errors, "
            f"{IMAGES.credits_lost} credits lost"
        )
    assert IMAGES.server_errors == []
    assert IMAGES.credits_lost == 0


# ------------------------------------------------------------ what a real process logs of them


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """`pixelfleet up` (API, a worker process, the scheduler), its stdout and stderr in a file."""
    data_dir: Path = tmp_path_factory.mktemp("noise") / "data"
    with pixelfleet_up(data_dir, workers=1) as running:
        yield running


def _records(log: str) -> list[dict[str, Any]]:
    records = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"a line that is not JSON: {line!r}") from None
        assert isinstance(record, dict), line
        records.append(record)
    return records


def _logged(platform: RunningPlatform, found: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first record `found` accepts, once the process has written it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        matching = [record for record in _records(platform.log()) if found(record)]
        if matching:
            return matching[0]
        time.sleep(0.1)
    raise AssertionError(f"no such record in the log:\n{platform.log()}")


def test_hostile_images_leave_only_json_lines_and_no_errors_in_the_log(
    platform: RunningPlatform,
) -> None:
    pipeline = json.loads(PIPELINE)
    with httpx.Client(base_url=platform.base_url, timeout=30) as http:
        headers = sign_in(http, f"noisy-{uuid.uuid4().hex[:8]}@example.com")
        tiff = submit(http, headers, pipeline, corrupt_lzw_tiff())
        exif = submit(http, headers, pipeline, jpeg_with_corrupt_exif())
        # Over Pillow's DecompressionBombWarning threshold (89 MP), under its error.
        bomb = http.post(
            "/v1/tasks",
            headers=headers,
            files={"file": ("bomb.png", png_claiming(10_000, 9_500))},
            data={"pipeline": PIPELINE},
        )
        finals = [wait_final(http, headers, task["id"]) for task in (tiff, exif)]

    assert [task["status"] for task in finals] == ["failed", "succeeded"]
    assert bomb.status_code == 422
    # libtiff's own complaint, written by the C library to the worker's stderr.
    libtiff = _logged(platform, lambda r: r["logger"] == "stderr" and "table" in r["event"])
    assert libtiff["level"] == "warning"
    # Pillow's Python warning about the EXIF block.
    warned = _logged(platform, lambda r: r["logger"] == "py.warnings" and "Truncated" in r["event"])
    assert warned["level"] == "warning"
    # The refusal: at INFO, with the request's id.
    refused = _logged(platform, lambda r: "image-too-many-pixels" in r["event"])
    assert refused["level"] == "info"
    assert refused["request_id"] == bomb.headers["x-request-id"]
    records = _records(platform.log())
    assert [r for r in records if r["level"] in {"error", "critical"}] == []
