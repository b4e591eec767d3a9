"""The pipeline plans before it decodes: cheap reductions first, one final resample."""

from io import BytesIO
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFilter, JpegImagePlugin
from sample_images import as_array, encoded, photo, reopened, scene, swapped_primaries_profile
from similarity import ssim

from pixelfleet.imaging import fast_shrink
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.imaging.spec import Pipeline, parse_pipeline

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
    # Decoded at a quarter (1000x750), then one resample per output, each from the
    # smallest image made so far that is at least 1.5x larger.
    assert resamples == [
        ((1000, 750), (512, 384)),
        ((512, 384), (256, 192)),
        ((256, 192), (64, 48)),
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
    assert resamples == [((320, 240), (150, 113)), ((150, 113), (100, 75))]
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
        ("png", {"compress_level": 6}),  # a small image: see test_png_effort
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


@pytest.fixture
def array_shrinks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, int], Any]]:
    """The shrinks made in NumPy (see fast_shrink), as (from, to) sizes."""
    calls: list[tuple[tuple[int, int], Any]] = []
    original = fast_shrink.shrink

    def spy(pixels: Any, size: tuple[int, int], **kwargs: Any) -> Any:
        calls.append(((pixels.shape[1], pixels.shape[0]), size))
        return original(pixels, size, **kwargs)

    monkeypatch.setattr(fast_shrink, "shrink", spy)
    return calls


def test_variants_shrink_in_a_cascade_and_each_looks_like_a_direct_lanczos_resample(
    camera_photo: bytes,
    decoded_photo: Image.Image,
    resamples: list[Any],
    array_shrinks: list[Any],
) -> None:
    piped = pipeline(
        variants=[
            {
                "name": f"w{width}",
                "operations": [{"op": "resize", "width": width}],
                "output": {"format": "png"},
            }
            for width in (150, 640, 1280, 2048)
        ]
    )

    results = run_pipeline(camera_photo, piped, LIMITS)

    # Largest first, each from the smallest image made so far that is 1.5x larger: the
    # shrinks by less than 4x in NumPy (the first one straight from OpenCV's decode), the
    # 4.3x one by Pillow.
    assert array_shrinks == [
        ((4000, 3000), (2048, 1536)),
        ((2048, 1536), (1280, 960)),
        ((1280, 960), (640, 480)),
    ]
    assert resamples == [((640, 480), (150, 113))]
    assert list(results) == ["w150", "w640", "w1280", "w2048"]
    for result in [results["w150"], results["w640"], results["w1280"]]:
        reference = decoded_photo.resize((result.width, result.height), Image.Resampling.LANCZOS)
        assert ssim(reopened(result.data), reference) >= 0.98


SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("marked_first", [True, False])
@pytest.mark.parametrize("profile", [None, SRGB_PROFILE], ids=["no profile", "srgb profile"])
def test_variants_sharing_a_resample_never_see_each_others_later_steps(
    marked_first: bool, profile: bytes | None
) -> None:
    source = scene(320, 240)
    marked = {
        "name": "marked",
        "operations": [
            {"op": "resize", "width": 160},
            {"op": "watermark", "text": "MARK", "size": 40, "opacity": 1},
            {"op": "crop", "width": 100, "height": 100},
        ],
        "output": {"format": "png"},
    }
    same = {
        "name": "same",
        "operations": [{"op": "resize", "width": 160}],
        "output": {"format": "png"},
    }
    smaller = {
        "name": "smaller",
        "operations": [{"op": "resize", "width": 80}],
        "output": {"format": "png"},
    }
    variants = [marked, same, smaller] if marked_first else [same, smaller, marked]

    data = encoded(source, "PNG", **({"icc_profile": profile} if profile else {}))

    results = run_pipeline(data, pipeline(variants=variants), LIMITS)

    plain = source.resize((160, 120), Image.Resampling.LANCZOS)
    assert np.array_equal(as_array(reopened(results["same"].data)), as_array(plain))
    assert (results["marked"].width, results["marked"].height) == (100, 100)
    smaller_reference = source.resize((80, 60), Image.Resampling.LANCZOS)
    assert ssim(reopened(results["smaller"].data), smaller_reference) >= 0.98


GREY_CHAIN = [
    {"op": "resize", "width": 1280},
    {"op": "blur", "sigma": 2},
    {"op": "grayscale"},
    {"op": "rotate", "angle": 90},
]


@pytest.fixture(scope="module")
def hd_photo() -> bytes:
    return encoded(photo(1920, 1080), "JPEG", quality=90)


@pytest.fixture(scope="module")
def hd_png() -> bytes:
    """Decoded whole, in colour: no JPEG decoder to hand over only the luma."""
    return encoded(photo(1920, 1080), "PNG", compress_level=1)


@pytest.fixture
def filtered_modes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    modes: list[str] = []
    original = Image.Image.filter

    def spy(self: Image.Image, kernel: Any) -> Image.Image:
        modes.append(self.mode)
        return original(self, kernel)

    monkeypatch.setattr(Image.Image, "filter", spy)
    return modes


def written_order(data: bytes, *, sharpen: bool = False) -> Image.Image:
    """GREY_CHAIN step by step as written, in plain Pillow."""
    image = reopened(data).resize((1280, 720), Image.Resampling.LANCZOS)
    image = image.filter(ImageFilter.GaussianBlur(2))
    if sharpen:
        image = image.filter(ImageFilter.UnsharpMask(1, 100, 0))
    return image.convert("L").transpose(Image.Transpose.ROTATE_90)


def test_a_later_grayscale_is_taken_first_so_blur_works_on_one_channel(
    hd_png: bytes, filtered_modes: list[str]
) -> None:
    piped = pipeline(operations=GREY_CHAIN, output={"format": "png"})

    result = run_pipeline(hd_png, piped, LIMITS)["default"]

    assert filtered_modes == ["L"]
    decoded = reopened(result.data)
    assert decoded.mode == "L"
    assert ssim(decoded, written_order(hd_png)) >= 0.99


def test_a_colour_jpeg_that_turns_grey_first_is_decoded_as_its_luma_alone(
    hd_photo: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[str | None] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None, size: Any) -> Any:
        modes.append(mode)
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    colour = pipeline(operations=GREY_CHAIN[:2], output={"format": "png"})
    grey = pipeline(
        variants=[
            {"name": "a", "operations": GREY_CHAIN, "output": {"format": "png"}},
            {"name": "b", "operations": [{"op": "grayscale"}], "output": {"format": "png"}},
        ]
    )

    run_pipeline(hd_photo, colour, LIMITS)
    results = run_pipeline(hd_photo, grey, LIMITS)

    assert modes == ["L"]  # none for the colour output: it needs no draft at all
    assert ssim(reopened(results["a"].data), written_order(hd_photo)) >= 0.99
    assert ssim(reopened(results["b"].data), reopened(hd_photo).convert("L")) >= 0.99


def test_the_luma_is_not_taken_early_across_a_step_that_treats_channels_unequally(
    hd_photo: bytes, filtered_modes: list[str]
) -> None:
    operations = [*GREY_CHAIN[:2], {"op": "sharpen"}, *GREY_CHAIN[2:]]
    piped = pipeline(operations=operations, output={"format": "png"})

    result = run_pipeline(hd_photo, piped, LIMITS)["default"]

    assert filtered_modes == ["RGB", "RGB"]  # blur, then sharpen, in colour
    assert (result.width, result.height) == (720, 1280)


@pytest.mark.parametrize("pil_format", ["JPEG", "PNG"])
def test_the_luma_is_taken_only_after_the_colour_profile_is_applied(pil_format: str) -> None:
    data = encoded(scene(320, 240), pil_format, icc_profile=swapped_primaries_profile())
    piped = pipeline(
        operations=[{"op": "resize", "width": 80}, {"op": "grayscale"}],
        output={"format": "png"},
    )

    result = run_pipeline(data, piped, LIMITS)["default"]

    r, g, b = scene(320, 240).split()
    in_srgb = Image.merge("RGB", (b, g, r)).resize((80, 60), Image.Resampling.LANCZOS)
    difference = as_array(reopened(result.data)).astype(int) - as_array(in_srgb.convert("L"))
    assert np.abs(difference).mean() < 2
