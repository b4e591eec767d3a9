from io import BytesIO
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageCms
from pydantic import ValidationError
from sample_images import as_array, encoded, photo, reopened, scene, swapped_primaries_profile
from similarity import ssim

from pixelfleet.imaging.codecs import encode
from pixelfleet.imaging.errors import PipelineInvalid, ProcessingFailed
from pixelfleet.imaging.formats import OUTPUT_FORMATS, OutputFormatName, output_format_for
from pixelfleet.imaging.spec import OutputSpec

PIL_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF", "gif": "GIF"}


def srgb_profile() -> bytes:
    profile: bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return profile


def with_metadata(image: Image.Image) -> Image.Image:
    exif = Image.Exif()
    exif[0x010F] = "PixelFleet Camera"  # Make
    exif[0x013B] = "Someone Private"  # Artist
    image.info["exif"] = exif.tobytes()
    image.info["icc_profile"] = srgb_profile()
    image.info["comment"] = b"a private comment"
    image.info["xmp"] = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>private</x:xmpmeta>"
    return image


def test_output_formats_name_their_content_types_and_extensions() -> None:
    assert {name: (f.content_type, f.extension) for name, f in OUTPUT_FORMATS.items()} == {
        "jpeg": ("image/jpeg", "jpg"),
        "png": ("image/png", "png"),
        "webp": ("image/webp", "webp"),
        "avif": ("image/avif", "avif"),
        "gif": ("image/gif", "gif"),
    }


@pytest.mark.parametrize(
    ("fmt", "likeness"),
    [("jpeg", 0.95), ("png", 1.0), ("webp", 0.95), ("avif", 0.95), ("gif", 0.9)],
)
def test_each_output_format_round_trips_with_its_format_and_content_type(
    fmt: OutputFormatName, likeness: float
) -> None:
    source = scene(96, 64)

    result = encode(source, OutputSpec(format=fmt, quality=90))

    decoded = reopened(result.data)
    assert result.format == fmt
    assert result.content_type == OUTPUT_FORMATS[fmt].content_type
    assert decoded.format == PIL_NAMES[fmt]
    assert (result.width, result.height) == decoded.size == (96, 64)
    assert ssim(decoded, source) >= likeness


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "gif"])
def test_metadata_is_stripped_by_default(fmt: OutputFormatName) -> None:
    result = encode(with_metadata(scene(48, 32)), OutputSpec(format=fmt))

    decoded = reopened(result.data)
    assert len(decoded.getexif()) == 0
    assert "exif" not in decoded.info
    assert "icc_profile" not in decoded.info
    assert "comment" not in decoded.info
    assert "xmp" not in decoded.info
    assert b"PixelFleet Camera" not in result.data
    assert b"private" not in result.data


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_icc_profile_and_exif_are_kept_when_asked(fmt: OutputFormatName) -> None:
    spec = OutputSpec(format=fmt, strip_metadata=False, colour_profile="keep")

    result = encode(with_metadata(scene(48, 32)), spec)

    decoded = reopened(result.data)
    assert decoded.getexif()[0x010F] == "PixelFleet Camera"
    assert decoded.info.get("icc_profile") == srgb_profile()
    assert b"private comment" not in result.data


def test_an_icc_profile_for_another_colour_space_is_not_kept() -> None:
    grey = scene(48, 32).convert("L")
    grey.info["icc_profile"] = srgb_profile()  # an RGB profile on a grey image

    result = encode(grey, OutputSpec(format="png", colour_profile="keep"))

    assert "icc_profile" not in reopened(result.data).info


def test_jpeg_output_puts_transparent_areas_on_white() -> None:
    source = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    source.paste((200, 0, 0, 255), (16, 0, 32, 32))

    decoded = reopened(encode(source, OutputSpec(format="jpeg", quality=95)).data)

    assert decoded.mode == "RGB"
    left = decoded.getpixel((4, 16))
    right = decoded.getpixel((28, 16))
    assert isinstance(left, tuple)
    assert min(left) > 245
    assert isinstance(right, tuple)
    assert right[0] > 180
    assert right[1] < 40


@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_transparency_survives_formats_with_alpha(fmt: OutputFormatName) -> None:
    source = scene(48, 32, alpha=True)

    decoded = reopened(encode(source, OutputSpec(format=fmt, quality=95)).data)

    assert decoded.mode == "RGBA"
    assert ssim(decoded, source) > 0.95


@pytest.mark.parametrize("mode", ["P", "1", "LA", "CMYK", "I;16", "L", "RGBA"])
@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "gif"])
def test_every_common_mode_encodes_in_every_output_format(mode: str, fmt: OutputFormatName) -> None:
    if mode == "I;16":
        source = Image.new("I;16", (24, 16), 40000)
    else:
        source = scene(24, 16, alpha=mode == "LA").convert(mode)

    result = encode(source, OutputSpec(format=fmt))

    assert reopened(result.data).size == (24, 16)


def test_sixteen_bit_grey_is_scaled_to_eight_bits_not_clipped() -> None:
    source = Image.new("I;16", (16, 16), 32768)

    decoded = reopened(encode(source, OutputSpec(format="jpeg", quality=100)).data)

    assert decoded.mode == "L"
    value = decoded.getpixel((8, 8))
    assert isinstance(value, int)
    assert abs(value - 128) <= 2


def test_lower_quality_makes_smaller_lossy_files() -> None:
    source = scene(128, 96)

    small = encode(source, OutputSpec(format="webp", quality=10))
    large = encode(source, OutputSpec(format="webp", quality=95))

    assert len(small.data) < len(large.data)


def test_no_format_means_the_source_format_if_writable_else_png() -> None:
    assert output_format_for(None, "jpeg").name == "jpeg"
    assert output_format_for(None, "WEBP").name == "webp"
    assert output_format_for(None, "gif").name == "gif"
    assert output_format_for(None, "tiff").name == "png"
    assert output_format_for(None, None).name == "png"
    assert output_format_for("avif", "jpeg").name == "avif"


def test_encode_falls_back_to_the_images_own_format() -> None:
    opened = Image.open(BytesIO(_jpeg()))

    assert encode(opened, OutputSpec()).format == "jpeg"


def _jpeg() -> bytes:
    buffer = BytesIO()
    scene(32, 24).save(buffer, "JPEG")
    return buffer.getvalue()


def test_gif_output_is_a_palette_of_at_most_256_colours() -> None:
    source = photo(160, 120)

    decoded = reopened(encode(source, OutputSpec(format="gif")).data)

    assert decoded.mode == "P"
    assert len(decoded.convert("RGB").getcolors(maxcolors=100_000) or []) <= 256
    assert ssim(decoded, source) > 0.8


def test_gif_output_keeps_transparent_areas_transparent() -> None:
    source = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    source.paste((30, 160, 90, 255), (20, 0, 40, 40))

    decoded = reopened(encode(source, OutputSpec(format="gif")).data).convert("RGBA")

    assert decoded.getpixel((5, 20)) == (0, 0, 0, 0) or decoded.getpixel((5, 20))[3] == 0  # type: ignore[index]
    assert decoded.getpixel((30, 20)) == (30, 160, 90, 255)


def test_a_palette_image_is_written_to_gif_without_requantising() -> None:
    source = scene(64, 48).quantize(17)

    decoded = reopened(encode(source, OutputSpec(format="gif")).data)

    assert np.array_equal(as_array(decoded.convert("RGB")), as_array(source.convert("RGB")))


def test_progressive_jpeg_is_progressive() -> None:
    plain = reopened(encode(scene(96, 64), OutputSpec(format="jpeg", quality=90)).data)
    progressive = reopened(
        encode(scene(96, 64), OutputSpec(format="jpeg", quality=90, progressive=True)).data
    )

    assert not plain.info.get("progressive")
    assert progressive.info.get("progressive")
    assert ssim(progressive, scene(96, 64)) > 0.95


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1"])
def test_interlaced_png_holds_exactly_the_pixels(mode: str) -> None:
    if mode == "P":
        source = scene(101, 67).quantize(200)
    else:
        source = scene(101, 67, alpha=mode in {"RGBA", "LA"}).convert(mode)

    result = encode(source, OutputSpec(format="png", progressive=True))

    decoded = reopened(result.data)
    expected = reopened(encode(source, OutputSpec(format="png")).data)
    assert decoded.info.get("interlace") == 1
    assert "interlace" not in expected.info
    assert np.array_equal(as_array(decoded.convert("RGBA")), as_array(expected.convert("RGBA")))


def test_interlaced_png_stores_sixteen_bit_grey_in_eight_bits() -> None:
    source = Image.fromarray(np.arange(101 * 67, dtype=np.uint16).reshape(67, 101) * 9)

    decoded = reopened(encode(source, OutputSpec(format="png", progressive=True)).data)

    assert decoded.mode == "L"
    scaled = as_array(source).astype(int) // 256
    assert np.abs(as_array(decoded).astype(int) - scaled).max() <= 1


@pytest.mark.parametrize(("width", "height"), [(1, 1), (3, 2), (9, 9), (17, 5)])
def test_interlaced_png_works_for_images_smaller_than_a_pass(width: int, height: int) -> None:
    source = scene(160, 120).resize((width, height))

    decoded = reopened(encode(source, OutputSpec(format="png", progressive=True)).data)

    assert np.array_equal(as_array(decoded), as_array(source))


def test_progressive_gif_is_interlaced_and_shows_the_same_picture() -> None:
    plain = encode(scene(96, 64), OutputSpec(format="gif"))
    interlaced = encode(scene(96, 64), OutputSpec(format="gif", progressive=True))

    # The image descriptor's flags byte (after the separator and 8 bytes) has bit 0x40.
    descriptor = interlaced.data.index(b"\x2c", 13)
    assert interlaced.data[descriptor + 9] & 0x40
    assert not plain.data[plain.data.index(b"\x2c", 13) + 9] & 0x40
    assert np.array_equal(
        as_array(reopened(plain.data).convert("RGB")),
        as_array(reopened(interlaced.data).convert("RGB")),
    )


def test_lossless_webp_keeps_every_visible_pixel() -> None:
    source = scene(96, 64, alpha=True)

    decoded = as_array(reopened(encode(source, OutputSpec(format="webp", lossless=True)).data))

    # The colour under fully transparent pixels is not kept: nobody can see it.
    visible = as_array(source)[..., 3] > 0
    assert np.array_equal(decoded[visible], as_array(source)[visible])
    assert np.array_equal(decoded[..., 3], as_array(source)[..., 3])


def test_lossless_avif_keeps_pixels_within_colour_conversion_rounding() -> None:
    source = photo(96, 64)

    lossless = encode(source, OutputSpec(format="avif", lossless=True))
    lossy = encode(source, OutputSpec(format="avif"))

    difference = np.abs(as_array(reopened(lossless.data)).astype(int) - as_array(source))
    assert difference.max() <= 4
    assert len(lossless.data) > len(lossy.data)


@pytest.mark.parametrize(
    ("fmt", "field"),
    [
        ("webp", "progressive"),
        ("avif", "progressive"),
        ("jpeg", "lossless"),
        ("png", "lossless"),
        ("gif", "lossless"),
    ],
)
def test_an_option_the_format_lacks_is_a_field_error(fmt: OutputFormatName, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        OutputSpec.model_validate({"format": fmt, field: True})

    assert [error["loc"] for error in refused.value.errors()] == [(field,)]


def test_an_option_is_checked_against_the_source_format_when_no_format_is_given() -> None:
    spec = OutputSpec(progressive=True)

    assert reopened(encode(scene(32, 24), spec, source_format="PNG").data).info["interlace"] == 1
    with pytest.raises(PipelineInvalid) as refused:
        encode(scene(32, 24), spec, source_format="WEBP")

    assert refused.value.status == 422
    assert [error.field for error in refused.value.errors] == ["pipeline.output.progressive"]


def brute_force_best_quality(source: Image.Image, fmt: str, max_bytes: int, top: int) -> int:
    for quality in range(top, 0, -1):
        if len(encoded(source, fmt, quality=quality, optimize=True)) <= max_bytes:
            return quality
    return 0


def test_max_bytes_finds_a_high_quality_that_fits_within_seven_encodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = photo(240, 180)
    budget = len(encoded(source, "JPEG", quality=90)) // 2
    saves: list[object] = []
    original = Image.Image.save

    def counting_save(self: Image.Image, *args: Any, **kwargs: Any) -> None:
        saves.append(kwargs.get("quality"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", counting_save)
    result = encode(source, OutputSpec(format="jpeg", quality=90, max_bytes=budget))
    monkeypatch.undo()

    best = brute_force_best_quality(source, "JPEG", budget, 90)
    assert len(result.data) <= budget
    assert result.quality is not None
    assert best - 2 <= result.quality <= best
    assert len(saves) <= 7
    assert ssim(reopened(result.data), source) > 0.8


def test_max_bytes_is_met_at_the_asked_quality_in_one_encode_when_it_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saves: list[object] = []
    original = Image.Image.save
    monkeypatch.setattr(
        Image.Image, "save", lambda self, *a, **k: saves.append(1) or original(self, *a, **k)
    )

    result = encode(scene(64, 48), OutputSpec(format="webp", quality=75, max_bytes=1_000_000))

    assert result.quality == 75
    assert len(saves) == 1


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_max_bytes_works_for_each_lossy_format(fmt: OutputFormatName) -> None:
    source = photo(200, 150)
    full = encode(source, OutputSpec(format=fmt, quality=95))

    result = encode(source, OutputSpec(format=fmt, quality=95, max_bytes=len(full.data) // 3))

    assert len(result.data) <= len(full.data) // 3
    assert result.quality is not None
    assert result.quality < 95


def test_an_impossible_max_bytes_fails_naming_the_target() -> None:
    with pytest.raises(ProcessingFailed, match="max_bytes=50"):
        encode(photo(200, 150), OutputSpec(format="jpeg", max_bytes=50))


@pytest.mark.parametrize(
    "raw",
    [
        {"format": "png", "max_bytes": 1000},
        {"format": "gif", "max_bytes": 1000},
        {"format": "webp", "lossless": True, "max_bytes": 1000},
    ],
)
def test_max_bytes_needs_a_lossy_encoding(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as refused:
        OutputSpec.model_validate(raw)

    assert [error["loc"] for error in refused.value.errors()] == [("max_bytes",)]


def with_profile(image: Image.Image, profile: bytes) -> Image.Image:
    image.info["icc_profile"] = profile
    return image


def red_and_blue_swapped(image: Image.Image) -> Image.Image:
    r, g, b = image.split()
    return Image.merge("RGB", (b, g, r))


def test_pixels_in_another_profile_are_converted_to_srgb_by_default() -> None:
    source = with_profile(scene(96, 64), swapped_primaries_profile())

    result = encode(source, OutputSpec(format="png"))

    decoded = reopened(result.data)
    assert "icc_profile" not in decoded.info
    difference = np.abs(
        as_array(decoded).astype(int) - as_array(red_and_blue_swapped(scene(96, 64)))
    )
    assert difference.max() <= 2


def test_converting_keeps_alpha_and_grey() -> None:
    transparent = with_profile(scene(48, 32, alpha=True), swapped_primaries_profile())
    grey = with_profile(scene(48, 32).convert("L"), srgb_profile())

    converted = reopened(encode(transparent, OutputSpec(format="png")).data)
    kept_grey = reopened(encode(grey, OutputSpec(format="png")).data)

    assert converted.mode == "RGBA"
    assert np.array_equal(as_array(converted)[..., 3], as_array(transparent)[..., 3])
    assert kept_grey.mode == "L"


def test_keep_leaves_the_pixels_and_embeds_the_profile_untouched() -> None:
    profile = swapped_primaries_profile()
    source = with_profile(scene(96, 64), profile)

    decoded = reopened(encode(source, OutputSpec(format="png", colour_profile="keep")).data)

    assert decoded.info["icc_profile"] == profile
    assert np.array_equal(as_array(decoded), as_array(scene(96, 64)))


def test_an_srgb_profile_changes_no_pixel_and_a_damaged_one_is_ignored() -> None:
    srgb = with_profile(scene(48, 32), srgb_profile())
    damaged = with_profile(scene(48, 32), b"not a profile at all, just bytes" * 4)

    for source in (srgb, damaged):
        decoded = reopened(encode(source, OutputSpec(format="png")).data)
        assert np.array_equal(as_array(decoded), as_array(scene(48, 32)))
        assert "icc_profile" not in decoded.info


def test_keep_without_strip_keeps_exif_but_strip_with_keep_keeps_only_the_profile() -> None:
    source = with_metadata(scene(48, 32))

    stripped = reopened(encode(source, OutputSpec(format="jpeg", colour_profile="keep")).data)
    converted = reopened(encode(source, OutputSpec(format="jpeg", strip_metadata=False)).data)

    assert stripped.info["icc_profile"] == srgb_profile()
    assert len(stripped.getexif()) == 0
    assert "icc_profile" not in converted.info
    assert converted.getexif()[0x010F] == "PixelFleet Camera"
