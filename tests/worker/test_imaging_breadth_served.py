"""What image services are asked for after resizing, through a served `pixelfleet up` as a
client sees it: a phone's HEIC, an animation kept, crops that keep faces or a focal point, and
placeholders. Real files from other projects' test data (tests/imaging/real_images); every
result is decoded."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blurhash
import httpx
import numpy as np
import pytest
from PIL import Image

from pixelfleet.imaging.faces import find_faces
from tests.harness.embedded import pixelfleet_up
from tests.live_api import sign_in, submit, wait_final

REAL = Path(__file__).parents[1] / "imaging" / "real_images"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with (
        pixelfleet_up(tmp_path_factory.mktemp("breadth") / "data", workers=1) as platform,
        httpx.Client(base_url=platform.base_url, timeout=30) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def headers(http: httpx.Client) -> dict[str, str]:
    return sign_in(http, "breadth@example.com")


def made(
    http: httpx.Client, headers: dict[str, str], name: str, pipeline: dict[str, Any]
) -> tuple[dict[str, Any], list[Image.Image]]:
    """The finished task, and each output as served at its URL (no credential needed)."""
    task = submit(http, headers, pipeline, (REAL / name).read_bytes())
    done = wait_final(http, headers, task["id"])
    assert done["status"] == "succeeded", done
    images = []
    for output in done["outputs"]:
        served = http.get(output["url"])
        assert served.status_code == 200
        assert served.headers["content-type"] == output["content_type"]
        images.append(Image.open(io.BytesIO(served.content)))
    return done, images


def test_a_phone_s_heic_comes_out_as_an_upright_jpeg(
    http: httpx.Client, headers: dict[str, str]
) -> None:
    task, [image] = made(
        http, headers, "arrow.heic", {"operations": [{"op": "resize", "width": 600}]}
    )

    assert task["source"]["format"] == "heic"
    assert (image.format, image.size) == ("JPEG", (600, 800))


def test_an_animated_gif_comes_out_animated(http: httpx.Client, headers: dict[str, str]) -> None:
    pipeline = {
        "operations": [{"op": "resize", "width": 100}],
        "variants": [
            {"name": "moving", "output": {"format": "webp"}},
            {"name": "poster", "output": {"format": "jpeg"}},
        ],
    }

    task, [moving, poster] = made(http, headers, "chi.gif", pipeline)

    assert moving.n_frames > 20
    assert moving.info["loop"] == 0
    assert getattr(poster, "n_frames", 1) == 1
    assert moving.size == poster.size == (100, 75)
    # 31 frames count 4 times: the shared resize and the WebP; the JPEG poster once.
    assert task["cost"] == 1 + 4 * 1 + 4 * 1 + 0


def test_a_face_crop_keeps_the_face_a_centred_crop_would_lose(
    http: httpx.Client, headers: dict[str, str]
) -> None:
    # Eileen Collins's face is at y 69-161 of 512: a centred 512x171 band starts at y 170.
    crop = {"op": "crop", "width": 512, "height": 171}
    pipeline = {
        "variants": [
            {"name": "face", "operations": [{**crop, "gravity": "face"}]},
            {"name": "centre", "operations": [crop]},
        ]
    }

    _, [face, centre] = made(http, headers, "astronaut.png", pipeline)

    assert face.size == centre.size == (512, 171)
    assert len(find_faces(face)) == 1
    assert find_faces(centre) == []


def test_placeholders_come_with_the_outputs(http: httpx.Client, headers: dict[str, str]) -> None:
    pipeline = {
        "operations": [{"op": "resize", "width": 400}],
        "output": {"format": "webp", "placeholder": "blurhash"},
    }

    task, [image] = made(http, headers, "xiaomi.heic", pipeline)

    output = task["outputs"][0]
    small = (image.width // 8, image.height // 8)
    drawn = np.asarray(blurhash.decode(output["placeholder"], *small), dtype=np.float64)
    shown = np.asarray(image.convert("RGB").resize(small, Image.Resampling.BOX), dtype=np.float64)
    assert np.abs(drawn.mean(axis=(0, 1)) - shown.mean(axis=(0, 1))).max() < 20
    assert output["dominant_color"].startswith("#")
