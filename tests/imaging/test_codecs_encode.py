from io import BytesIO

import pytest
from PIL import Image, ImageCms
from sample_images import reopened, scene
from similarity import ssim

from pixelfleet.imaging.codecs import OUTPUT_FORMATS, OutputFormatName, encode, output_format_for
from pixelfleet.imaging.pipeline import OutputSpec

PIL_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}


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
    }


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_each_output_format_round_trips_with_its_format_and_content_type(
    fmt: OutputFormatName,
) -> None:
    source = scene(96, 64)

    result = encode(source, OutputSpec(format=fmt, quality=90))

    decoded = reopened(result.data)
    assert result.format == fmt
    assert result.content_type == OUTPUT_FORMATS[fmt].content_type
    assert decoded.format == PIL_NAMES[fmt]
    assert (result.width, result.height) == decoded.size == (96, 64)
    assert ssim(decoded, source) > 0.95


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
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
    spec = OutputSpec(format=fmt, strip_metadata=False)

    result = encode(with_metadata(scene(48, 32)), spec)

    decoded = reopened(result.data)
    assert decoded.getexif()[0x010F] == "PixelFleet Camera"
    assert decoded.info.get("icc_profile") == srgb_profile()
    assert b"private comment" not in result.data


def test_an_icc_profile_for_another_colour_space_is_not_kept() -> None:
    grey = scene(48, 32).convert("L")
    grey.info["icc_profile"] = srgb_profile()  # an RGB profile on a grey image

    result = encode(grey, OutputSpec(format="png", strip_metadata=False))

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


@pytest.mark.parametrize("mode", ["P", "1", "LA", "CMYK", "I;16", "L"])
@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
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
    assert output_format_for(None, "gif").name == "png"
    assert output_format_for(None, None).name == "png"
    assert output_format_for("avif", "jpeg").name == "avif"


def test_encode_falls_back_to_the_images_own_format() -> None:
    opened = Image.open(BytesIO(_jpeg()))

    assert encode(opened, OutputSpec()).format == "jpeg"


def _jpeg() -> bytes:
    buffer = BytesIO()
    scene(32, 24).save(buffer, "JPEG")
    return buffer.getvalue()
