"""The pipeline plans before it decodes: cheap reductions first, one final resample."""

from io import BytesIO
from typing import Any

import pytest
from PIL import Image, JpegImagePlugin
from sample_images import encoded, photo, reopened, scene
from similarity import ssim

from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.pipeline import Pipeline, parse_pipeline, run_pipeline

LIMITS = ImageLimits()


def pipeline(**raw: Any) -> Pipeline:
    return parse_pipeline(raw, LIMITS)


@pytest.fixture(scope="module")
def camera_photo() -> bytes:
    """A 12-megapixel photo-like JPEG, as a phone would upload."""
    return encoded(photo(4000, 3000), "JPEG", quality=90)


@pytest.fixture(scope="module")
def decoded_photo(camera_photo: bytes) -> Image.Image:
    image = Image.open(BytesIO(camera_photo))
    image.load()
    return image


@pytest.fixture
def draft_requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int] | None]:
    requests: list[tuple[int, int] | None] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None, size: Any) -> Any:
        requests.append(size)
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    return requests


@pytest.fixture
def resamples(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, int], Any]]:
    calls: list[tuple[tuple[int, int], Any]] = []
    original = Image.Image.resize

    def spy(self: Image.Image, size: Any, resample: Any = None, *args: Any, **kwargs: Any) -> Any:
        calls.append((self.size, tuple(size)))
        return original(self, size, resample, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)
    return calls


@pytest.mark.parametrize(
    ("operation", "size"),
    [
        ({"op": "thumbnail", "width": 512, "height": 512}, (512, 384)),
        ({"op": "resize", "width": 1600}, (1600, 1200)),
    ],
)
def test_planned_shrinks_look_like_a_plain_lanczos_resample(
    camera_photo: bytes,
    decoded_photo: Image.Image,
    draft_requests: list[Any],
    operation: dict[str, Any],
    size: tuple[int, int],
) -> None:
    piped = pipeline(operations=[operation], output={"format": "png"})

    result = run_pipeline(camera_photo, piped, LIMITS)["default"]

    reference = decoded_photo.resize(size, Image.Resampling.LANCZOS)
    assert len(draft_requests) == 1  # it did take the reduced-decoding path
    assert (result.width, result.height) == size
    assert ssim(reopened(result.data), reference) >= 0.98


def test_a_jpeg_is_drafted_once_for_the_largest_size_any_variant_needs(
    camera_photo: bytes, draft_requests: list[Any], resamples: list[Any]
) -> None:
    piped = pipeline(
        variants=[
            {"name": "s", "operations": [{"op": "thumbnail", "width": 256, "height": 256}]},
            {"name": "m", "operations": [{"op": "resize", "width": 512}]},
            {"name": "xs", "operations": [{"op": "resize", "height": 48}]},
        ]
    )

    results = run_pipeline(camera_photo, piped, LIMITS)

    # The 512x384 output needs most; a quarter more is asked for.
    assert draft_requests == [(640, 480)]
    assert {name: (r.width, r.height) for name, r in results.items()} == {
        "s": (256, 192),
        "m": (512, 384),
        "xs": (64, 48),
    }
    # Decoded at a quarter (1000x750), then one resample per output.
    assert resamples == [
        ((1000, 750), (256, 192)),
        ((1000, 750), (512, 384)),
        ((1000, 750), (64, 48)),
    ]


def test_no_draft_when_any_output_starts_with_something_else(
    camera_photo: bytes, draft_requests: list[Any]
) -> None:
    piped = pipeline(
        variants=[
            {"name": "small", "operations": [{"op": "thumbnail", "width": 64, "height": 64}]},
            {"name": "cut", "operations": [{"op": "crop", "width": 64, "height": 64}]},
        ]
    )

    results = run_pipeline(camera_photo, piped, LIMITS)

    assert draft_requests == []
    assert (results["cut"].width, results["cut"].height) == (64, 64)


def test_a_large_non_jpeg_is_reduced_by_an_integer_factor_once_for_every_output(
    monkeypatch: pytest.MonkeyPatch, resamples: list[Any]
) -> None:
    factors: list[Any] = []
    original = Image.Image.reduce
    monkeypatch.setattr(
        Image.Image, "reduce", lambda self, f, *a: factors.append(f) or original(self, f, *a)
    )
    data = encoded(photo(1600, 1200), "PNG", compress_level=1)
    resamples.clear()
    piped = pipeline(
        variants=[
            {"name": "a", "operations": [{"op": "thumbnail", "width": 100, "height": 100}]},
            {"name": "b", "operations": [{"op": "thumbnail", "width": 150, "height": 150}]},
        ]
    )

    results = run_pipeline(data, piped, LIMITS)

    # Still at least twice the larger target (150x113) on both sides: 1600/5 = 320.
    assert factors == [5]
    assert resamples == [((320, 240), (100, 75)), ((320, 240), (150, 113))]
    reference = photo(1600, 1200).resize((150, 113), Image.Resampling.LANCZOS)
    assert ssim(reopened(results["b"].data), reference) >= 0.98


def test_orientation_is_applied_after_the_shrink_on_the_small_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    turned: list[tuple[int, int]] = []
    original = Image.Image.transpose
    monkeypatch.setattr(
        Image.Image, "transpose", lambda self, m: turned.append(self.size) or original(self, m)
    )
    upright = photo(800, 600)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = original(upright, Image.Transpose.ROTATE_90)
    data = encoded(stored, "PNG", exif=exif.tobytes(), compress_level=1)
    piped = pipeline(operations=[{"op": "resize", "width": 100}], output={"format": "png"})

    result = run_pipeline(data, piped, LIMITS)["default"]

    assert turned == [(75, 100)]
    assert ssim(reopened(result.data), upright.resize((100, 75), Image.Resampling.LANCZOS)) > 0.98


def test_a_shrink_with_padding_pads_after_the_resample() -> None:
    piped = pipeline(
        operations=[{"op": "resize", "width": 100, "height": 100, "fit": "contain"}],
        output={"format": "png"},
    )

    result = run_pipeline(encoded(scene(320, 240), "JPEG", quality=95), piped, LIMITS)["default"]

    decoded = reopened(result.data)
    assert decoded.size == (100, 100)
    assert decoded.getpixel((50, 3)) == (255, 255, 255)
    expected = Image.new("RGB", (100, 100), (255, 255, 255))
    expected.paste(scene(100, 75), (0, 12))
    assert ssim(decoded, expected) > 0.95


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("jpeg", {"optimize": False}),
        ("png", {"compress_level": 6}),
        ("webp", {"method": 4}),
        ("avif", {"speed": 8}),
    ],
)
def test_encoders_run_with_settings_chosen_for_speed(
    monkeypatch: pytest.MonkeyPatch, fmt: str, expected: dict[str, Any]
) -> None:
    options: list[dict[str, Any]] = []
    original = Image.Image.save
    monkeypatch.setattr(
        Image.Image,
        "save",
        lambda self, fp, f=None, **k: options.append(k) or original(self, fp, f, **k),
    )

    run_pipeline(encoded(scene(64, 48), "PNG"), pipeline(output={"format": fmt}), LIMITS)

    assert options[-1].items() >= expected.items()


def test_jpeg_optimises_its_tables_only_when_meeting_a_byte_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options: list[dict[str, Any]] = []
    original = Image.Image.save
    monkeypatch.setattr(
        Image.Image,
        "save",
        lambda self, fp, f=None, **k: options.append(k) or original(self, fp, f, **k),
    )

    run_pipeline(
        encoded(scene(64, 48), "PNG"),
        pipeline(output={"format": "jpeg", "max_bytes": 100_000}),
        LIMITS,
    )

    assert options[-1]["optimize"] is True
