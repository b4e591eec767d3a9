"""A JPEG shrunk first by 1x-4x is decoded and shrunk in NumPy (OpenCV), and its outputs look
like those of the Pillow path: same sizes, same orientation and colours, SSIM within rounding."""

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sample_images import as_array, encoded, photo, reopened, swapped_primaries_profile
from similarity import ssim

from pixelfleet.imaging import fast_shrink
from pixelfleet.imaging.errors import ProcessingFailed
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.imaging.spec import Pipeline, parse_pipeline

LIMITS = ImageLimits()


def pipeline(**raw: Any) -> Pipeline:
    return parse_pipeline(raw, LIMITS)


def variants(*widths: int, fmt: str = "png", then: list[Any] | None = None) -> Pipeline:
    return pipeline(
        variants=[
            {
                "name": f"w{width}",
                "operations": [{"op": "resize", "width": width}, *(then or [])],
                "output": {"format": fmt},
            }
            for width in widths
        ]
    )


def fine_texture(width: int, height: int) -> Image.Image:
    """What a LANCZOS shrink is most sensitive to: pixel noise, one-pixel lines, a fine
    checkerboard and small text, on a colour ramp."""
    rng = np.random.default_rng(3)
    xs = np.linspace(0, 255, width)[None, :].repeat(height, axis=0)
    pixels = np.stack([xs, xs[:, ::-1], np.full((height, width), 128.0)], axis=-1)
    pixels[: height // 2, : width // 2] = rng.integers(0, 256, (height // 2, width // 2, 3))
    checks = (np.indices((height // 2, width // 2)).sum(axis=0) % 2) * 255
    pixels[height // 2 :, width // 2 :] = checks[..., None]
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for x in range(width // 2, width, 7):
        draw.line((x, 0, x + 40, height // 2), fill=(0, 0, 0))
    for y in range(height // 2, height, 24):
        draw.text((10, y), "PixelFleet hairline 0123456789 " * 8, fill=(255, 255, 255))
    return image


@pytest.fixture(params=["photo", "fine_texture"])
def source_jpeg(request: pytest.FixtureRequest) -> bytes:
    image = photo(2000, 1500) if request.param == "photo" else fine_texture(2000, 1500)
    return encoded(image, "JPEG", quality=92)


@pytest.fixture
def fast_decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, int], str]]:
    """The images the NumPy path made: (size, mode)."""
    made: list[tuple[tuple[int, int], str]] = []
    original = fast_shrink.decoded_shrunk

    def spy(*args: Any, **kwargs: Any) -> Image.Image | None:
        image = original(*args, **kwargs)
        if image is not None:
            made.append((image.size, image.mode))
        return image

    monkeypatch.setattr(fast_shrink, "decoded_shrunk", spy)
    return made


def with_pillow(data: bytes, piped: Pipeline, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The outputs as the Pillow path makes them (the NumPy path turned off)."""
    with monkeypatch.context() as patch:
        patch.setattr(fast_shrink, "decoded_shrunk", lambda *args, **kwargs: None)
        return run_pipeline(data, piped, LIMITS)


def test_variants_match_the_pillow_path(
    source_jpeg: bytes, fast_decodes: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    piped = variants(1024, 640, 160)
    full = reopened(source_jpeg)

    fast = run_pipeline(source_jpeg, piped, LIMITS)
    slow = with_pillow(source_jpeg, piped, monkeypatch)

    assert fast_decodes == [((1024, 768), "RGB")]  # only the largest, then a cascade
    for name, result in fast.items():
        ours, theirs = reopened(result.data), reopened(slow[name].data)
        assert ours.size == theirs.size
        assert ssim(ours, theirs) >= 0.99
        # Against one LANCZOS resample of the full decode (which the Pillow path's largest
        # output is exactly): that one to about Pillow's own rounding, the cascaded ones
        # as close as the Pillow path's.
        reference = full.resize(ours.size, Image.Resampling.LANCZOS)
        if name == "w1024":
            assert ssim(ours, reference) >= 0.995
        else:
            assert ssim(ours, reference) >= ssim(theirs, reference) - 0.002


def test_lossy_outputs_lose_nothing_against_the_pillow_path(
    source_jpeg: bytes, fast_decodes: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    piped = variants(1024, 512, fmt="webp")
    full = reopened(source_jpeg)

    fast = run_pipeline(source_jpeg, piped, LIMITS)
    slow = with_pillow(source_jpeg, piped, monkeypatch)

    assert fast_decodes
    for name, result in fast.items():
        ours, theirs = reopened(result.data), reopened(slow[name].data)
        reference = full.resize(ours.size, Image.Resampling.LANCZOS)
        assert ssim(ours, reference) >= ssim(theirs, reference) - 0.002


def test_the_raw_shrink_matches_pillows_lanczos_to_its_rounding(source_jpeg: bytes) -> None:
    full = reopened(source_jpeg)

    ours = Image.fromarray(fast_shrink.shrink(np.asarray(full), (1100, 825)))

    assert ssim(ours, full.resize((1100, 825), Image.Resampling.LANCZOS)) >= 0.995


def test_an_oriented_jpeg_is_shrunk_as_stored_and_turned_after(
    fast_decodes: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    upright = photo(1500, 2000)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: shown after a quarter turn clockwise
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    data = encoded(stored, "JPEG", quality=92, exif=exif.tobytes())
    piped = pipeline(operations=[{"op": "resize", "width": 900}], output={"format": "png"})

    result = run_pipeline(data, piped, LIMITS)["default"]

    assert fast_decodes == [((1200, 900), "RGB")]  # stored orientation
    decoded = reopened(result.data)
    assert decoded.size == (900, 1200)
    turned = reopened(data).transpose(Image.Transpose.ROTATE_270)
    assert ssim(decoded, turned.resize((900, 1200), Image.Resampling.LANCZOS)) >= 0.995
    slow = reopened(with_pillow(data, piped, monkeypatch)["default"].data)
    assert ssim(decoded, slow) >= 0.99


def test_a_profile_is_applied_after_the_shrink(
    fast_decodes: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = photo(1600, 1200)
    data = encoded(source, "JPEG", quality=95, icc_profile=swapped_primaries_profile())
    piped = variants(1000, 400)

    results = run_pipeline(data, piped, LIMITS)

    assert fast_decodes == [((1000, 750), "RGB")]
    r, g, b = source.split()
    in_srgb = Image.merge("RGB", (b, g, r)).resize((1000, 750), Image.Resampling.LANCZOS)
    ours = reopened(results["w1000"].data)
    assert "icc_profile" not in ours.info
    assert np.abs(as_array(ours).astype(int) - as_array(in_srgb)).mean() < 3
    slow = with_pillow(data, piped, monkeypatch)
    for name, result in results.items():
        assert ssim(reopened(result.data), reopened(slow[name].data)) >= 0.99


def test_a_profile_kept_with_the_pixels_stays(fast_decodes: list[Any]) -> None:
    profile = swapped_primaries_profile()
    data = encoded(photo(1600, 1200), "JPEG", quality=95, icc_profile=profile)
    piped = pipeline(
        operations=[{"op": "resize", "width": 1000}],
        output={"format": "jpeg", "colour_profile": "keep"},
    )

    result = run_pipeline(data, piped, LIMITS)["default"]

    assert fast_decodes
    assert reopened(result.data).info.get("icc_profile") == profile


def test_grey_jpegs_and_outputs_turning_grey_decode_the_luma_alone(
    fast_decodes: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    colour = encoded(photo(1600, 1200), "JPEG", quality=92)
    grey = encoded(photo(1600, 1200).convert("L"), "JPEG", quality=92)
    piped = variants(1000, 300, then=[{"op": "grayscale"}])

    for data in (colour, grey):
        fast = run_pipeline(data, piped, LIMITS)
        slow = with_pillow(data, piped, monkeypatch)
        for name, result in fast.items():
            ours = reopened(result.data)
            assert ours.mode == "L"
            assert ssim(ours, reopened(slow[name].data)) >= 0.99

    assert fast_decodes == [((1000, 750), "L"), ((1000, 750), "L")]


@pytest.mark.parametrize(
    "case",
    ["cmyk", "truncated", "shrinks 4x or more", "sizes too close to share", "not a jpeg"],
)
def test_the_pillow_path_is_kept_where_numpy_does_not_apply(
    case: str, fast_decodes: list[Any]
) -> None:
    source = photo(1600, 1200)
    piped = variants(1000, 250)
    data = encoded(source, "JPEG", quality=90)
    if case == "cmyk":
        data = encoded(source.convert("CMYK"), "JPEG", quality=90)
    elif case == "shrinks 4x or more":
        piped = variants(380)
    elif case == "sizes too close to share":
        piped = variants(1000, 800)  # 800 from 1000 would soften it: both from the source
    elif case == "not a jpeg":
        data = encoded(source, "PNG", compress_level=1)

    if case == "truncated":
        with pytest.raises(ProcessingFailed):
            run_pipeline(data[: len(data) * 2 // 3], piped, LIMITS)
    else:
        results = run_pipeline(data, piped, LIMITS)
        assert all(result.width <= 1000 for result in results.values())

    assert fast_decodes == []


def test_opencv_is_not_loaded_for_a_thumbnail() -> None:
    # A fresh interpreter: this one may have loaded OpenCV for another test.
    script = (
        "import sys\n"
        "from pixelfleet.imaging.limits import ImageLimits\n"
        "from pixelfleet.imaging.runner import run_pipeline\n"
        "from pixelfleet.imaging.spec import parse_pipeline\n"
        "from PIL import Image\n"
        "import io\n"
        "buffer = io.BytesIO()\n"
        "Image.new('RGB', (2000, 1500), (90, 120, 200)).save(buffer, 'JPEG')\n"
        "limits = ImageLimits()\n"
        "thumbnail = {'op': 'thumbnail', 'width': 256, 'height': 256}\n"
        "piped = parse_pipeline({'operations': [thumbnail]}, limits)\n"
        "run_pipeline(buffer.getvalue(), piped, limits)\n"
        "print('cv2' in sys.modules)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert ran.stdout.strip() == "False"
