"""HEIC, phones' default format, read from real phone files (see real_images/SOURCES.md)."""

import io

import numpy as np
import pytest
from PIL import Image
from real_images import real_image
from sample_images import encoded, scene
from similarity import ssim

from pixelfleet.imaging.codecs import sniff
from pixelfleet.imaging.errors import TooManyPixels, UnsupportedImage
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.imaging.source_formats import (
    content_type_by_signature,
    has_accepted_signature,
    source_format_named,
)
from pixelfleet.imaging.spec import parse_pipeline

LIMITS = ImageLimits()


def _run(data: bytes, operations: list[dict[str, object]], **output: object) -> Image.Image:
    pipeline = parse_pipeline({"operations": operations, "output": output}, LIMITS)
    (result,) = run_pipeline(data, pipeline, LIMITS).values()
    return Image.open(io.BytesIO(result.data))


def test_a_phone_photo_is_sniffed_as_heic_from_its_header() -> None:
    info = sniff(real_image("xiaomi.heic"), LIMITS)

    assert (info.format, info.content_type) == ("heic", "image/heic")
    assert (info.width, info.height, info.frames) == (2592, 1944, 1)


def test_a_heic_signature_is_recognised_and_an_avif_stays_an_avif() -> None:
    heic = real_image("xiaomi.heic")
    avif = encoded(scene(32, 24), "AVIF")

    assert has_accepted_signature(heic[:4096])
    assert content_type_by_signature(heic) == "image/heic"
    assert content_type_by_signature(avif) == "image/avif"


def test_image_heif_names_the_same_format_as_image_heic() -> None:
    assert source_format_named("image/heif") == source_format_named("image/heic") == "heic"
    assert source_format_named("image/x-unknown") is None


def test_a_heic_stored_sideways_is_processed_upright() -> None:
    # The iPhone stores this photo turned, with a rotation (`irot`) for the reader to apply:
    # upright, a hand-drawn arrow points up, its tip at the top in the middle.
    info = sniff(real_image("arrow.heic"), LIMITS)
    assert (info.width, info.height, info.orientation) == (3024, 4032, 1)

    result = _run(real_image("arrow.heic"), [{"op": "resize", "width": 300}], format="png")

    assert result.size == (300, 400)
    dark = np.argwhere(np.asarray(result.convert("L")) < 80)
    tip_y, tip_x = dark[dark[:, 0].argmin()]
    assert tip_y < 0.2 * result.height
    assert 0.4 < tip_x / result.width < 0.6


def test_a_small_result_from_the_embedded_thumbnail_matches_one_from_the_whole_image() -> None:
    data = real_image("arrow.heic")
    whole = Image.open(io.BytesIO(data))
    whole.load()
    reference = whole.convert("RGB").resize((96, 128), Image.Resampling.LANCZOS)

    result = _run(data, [{"op": "thumbnail", "width": 128, "height": 128}], format="png")

    assert result.size == (96, 128)
    assert ssim(result, reference) > 0.9


def test_a_heic_is_written_as_jpeg_unless_a_format_is_named() -> None:
    assert _run(real_image("xiaomi.heic"), [{"op": "resize", "width": 200}]).format == "JPEG"
    assert _run(real_image("xiaomi.heic"), [], format="webp").format == "WEBP"


def test_a_greyscale_heic_stays_grey() -> None:
    result = _run(real_image("L_exif_xmp_iptc.heic"), [{"op": "resize", "width": 32}])

    assert result.mode == "L"
    assert result.size == (32, 32)


def test_a_200_megapixel_heic_is_refused_from_its_header() -> None:
    with pytest.raises(TooManyPixels) as refused:
        sniff(real_image("200MP.heic"), LIMITS)

    assert "max_source_pixels" in refused.value.detail


def test_a_heic_over_a_lower_pixel_limit_is_refused_with_its_size() -> None:
    limits = ImageLimits(max_source_pixels=4_000_000)

    with pytest.raises(TooManyPixels) as refused:
        sniff(real_image("xiaomi.heic"), limits)

    assert "2592x1944" in refused.value.detail


def test_a_damaged_heic_is_refused_as_unsupported() -> None:
    with pytest.raises(UnsupportedImage):
        sniff(real_image("corrupted.heic"), LIMITS)
