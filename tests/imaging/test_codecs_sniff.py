import warnings

import pytest
from PIL import Image
from sample_images import encoded, header_claiming, png_header_only, scene

from pixelfleet.imaging.codecs import sniff
from pixelfleet.imaging.errors import ImageTooLarge, TooManyFrames, TooManyPixels, UnsupportedImage
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.source_formats import declared_size

LIMITS = ImageLimits()


@pytest.mark.parametrize(
    ("pil_format", "expected_format", "content_type"),
    [
        ("JPEG", "jpeg", "image/jpeg"),
        ("PNG", "png", "image/png"),
        ("WEBP", "webp", "image/webp"),
        ("GIF", "gif", "image/gif"),
        ("AVIF", "avif", "image/avif"),
        ("TIFF", "tiff", "image/tiff"),
        ("BMP", "bmp", "image/bmp"),
    ],
)
def test_sniff_reports_format_size_and_content_type_of_each_accepted_format(
    pil_format: str, expected_format: str, content_type: str
) -> None:
    data = encoded(scene(64, 48), pil_format)

    info = sniff(data, LIMITS)

    assert info.format == expected_format
    assert info.content_type == content_type
    assert (info.width, info.height) == (64, 48)
    assert info.frames == 1
    assert info.bytes == len(data)


def test_sniff_counts_the_frames_of_an_animated_gif() -> None:
    frames = [
        scene(32, 32),
        scene(32, 32).transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        scene(32, 32),
    ]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)

    assert sniff(data, LIMITS).frames == 3


def test_sniff_reads_the_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(scene(40, 30), "JPEG", exif=exif.tobytes())

    assert sniff(data, LIMITS).orientation == 6


def test_text_is_refused_as_unsupported_media_type_415() -> None:
    with pytest.raises(UnsupportedImage) as refused:
        sniff(b"hello, this is certainly not an image\n" * 10, LIMITS)

    assert refused.value.status == 415
    assert refused.value.slug == "unsupported-media-type"


def test_an_image_in_a_format_we_do_not_accept_is_refused_415() -> None:
    data = encoded(scene(16, 16), "ICO")

    with pytest.raises(UnsupportedImage):
        sniff(data, LIMITS)


def test_empty_bytes_are_refused_415() -> None:
    with pytest.raises(UnsupportedImage):
        sniff(b"", LIMITS)


def test_an_upload_over_the_byte_limit_is_refused_413() -> None:
    data = encoded(scene(64, 48), "PNG")

    with pytest.raises(ImageTooLarge) as refused:
        sniff(data, ImageLimits(max_upload_bytes=len(data) - 1))

    assert refused.value.status == 413
    assert refused.value.slug == "image-too-large"


def test_an_upload_exactly_at_the_byte_limit_is_accepted() -> None:
    data = encoded(scene(64, 48), "PNG")

    assert sniff(data, ImageLimits(max_upload_bytes=len(data))).bytes == len(data)


def test_a_png_header_claiming_100000_by_100000_pixels_is_refused_without_decoding() -> None:
    # A header and nothing else: any attempt to decode would fail differently.
    data = png_header_only(100_000, 100_000)

    with pytest.raises(TooManyPixels) as refused:
        sniff(data, LIMITS)

    assert refused.value.status == 422
    assert refused.value.slug == "image-too-many-pixels"


def test_a_header_just_over_our_pixel_limit_is_refused_by_our_limit_not_pillows() -> None:
    # 8000x8000 is below Pillow's own bomb thresholds, above our default 50 MP.
    data = png_header_only(8000, 8000)

    with pytest.raises(TooManyPixels, match=r"the limit is 50000000 pixels \(max_source_pixels\)"):
        sniff(data, LIMITS)


ACCEPTED = ("JPEG", "PNG", "WEBP", "GIF", "AVIF", "TIFF", "BMP")
OVERSIZED = {
    "over our limit only": (8000, 8000),
    "over Pillow's bomb threshold and libavif's pixel limit": (17000, 17000),
    "a side over libavif's dimension limit": (40000, 2000),
}


@pytest.mark.parametrize("size", list(OVERSIZED))
@pytest.mark.parametrize("pil_format", ACCEPTED)
def test_a_header_stating_too_many_pixels_is_refused_for_that_in_every_format(
    pil_format: str, size: str
) -> None:
    width, height = OVERSIZED[size]
    data = header_claiming(pil_format, width, height)

    with pytest.raises(TooManyPixels) as refused:
        sniff(data, LIMITS)

    assert refused.value.status == 422
    assert refused.value.slug == "image-too-many-pixels"
    assert "(max_source_pixels)" in refused.value.detail


def test_a_17000_square_avif_that_pillow_cannot_open_is_refused_for_its_pixels() -> None:
    data = header_claiming("AVIF", 17_000, 17_000)

    with pytest.raises(TooManyPixels, match=r"17000x17000 \(289000000 pixels\)"):
        sniff(data, LIMITS)
    assert declared_size(data) == (17_000, 17_000)


@pytest.mark.parametrize("pil_format", ACCEPTED)
def test_the_header_reader_agrees_with_pillow_on_real_files(pil_format: str) -> None:
    data = encoded(scene(37, 23), pil_format)

    info = sniff(data, LIMITS)

    assert declared_size(data) == (info.width, info.height) == (37, 23)


def test_an_oversized_heic_header_is_refused_by_the_pixel_limit() -> None:
    # HEIC shares AVIF's container and its ispe box; the size is read from there.
    with pytest.raises(TooManyPixels) as refused:
        sniff(header_claiming("HEIF", 17_000, 17_000), LIMITS)

    assert "max_source_pixels" in refused.value.detail


def test_an_unreadable_header_within_the_limits_is_still_unsupported() -> None:
    # A WebP canvas with no image in it: nothing to decode, and no pixel limit broken.
    with pytest.raises(UnsupportedImage):
        sniff(header_claiming("WEBP", 100, 50), LIMITS)


def test_our_pixel_limit_applies_to_small_images_too() -> None:
    data = encoded(scene(20, 20), "PNG")

    with pytest.raises(TooManyPixels):
        sniff(data, ImageLimits(max_source_pixels=399))
    assert sniff(data, ImageLimits(max_source_pixels=400)).width == 20


def test_a_raised_pixel_limit_admits_an_image_pillow_would_warn_about() -> None:
    # 10000x9500 exceeds Pillow's warning threshold (about 89 MP); our limit is the one that counts.
    data = png_header_only(10_000, 9_500)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info = sniff(data, ImageLimits(max_source_pixels=100_000_000))

    assert (info.width, info.height) == (10_000, 9_500)


def animated(pil_format: str, count: int) -> bytes:
    frames = [Image.new("RGB", (16, 16), (10 * i % 256, 0, 0)) for i in range(count)]
    return encoded(frames[0], pil_format, save_all=True, append_images=frames[1:], duration=20)


@pytest.mark.parametrize("pil_format", ["GIF", "WEBP", "PNG"])
def test_an_animation_with_more_frames_than_the_limit_is_refused(pil_format: str) -> None:
    data = animated(pil_format, 6)

    with pytest.raises(TooManyFrames) as refused:
        sniff(data, ImageLimits(max_frames=5))

    assert refused.value.status == 422
    assert refused.value.slug == "image-too-many-frames"
    assert "the limit is 5 frames (max_frames)" in refused.value.detail
    assert sniff(data, ImageLimits(max_frames=6)).frames == 6


def test_the_default_frame_limit_is_a_thousand() -> None:
    assert ImageLimits().max_frames == 1000


def test_refusals_name_the_limit_and_its_setting() -> None:
    data = encoded(scene(20, 20), "PNG")

    with pytest.raises(ImageTooLarge, match=r"the limit is 10 bytes \(max_upload_bytes\)"):
        sniff(data, ImageLimits(max_upload_bytes=10))
    with pytest.raises(TooManyPixels, match=r"the limit is 399 pixels \(max_source_pixels\)"):
        sniff(data, ImageLimits(max_source_pixels=399))
