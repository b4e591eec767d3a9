"""Placeholders: a BlurHash or ThumbHash of each result that asks for one, and its dominant
colour; each checked by decoding it with the algorithm's own decoder."""

import base64
import io
import re

import blurhash
import numpy as np
import pytest
import thumbhash
from PIL import Image
from real_images import real_image
from sample_images import encoded, scene, swapped_primaries_profile

from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.placeholders import dominant_colour, placeholder_of, thumb_hash
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.imaging.spec import parse_pipeline

LIMITS = ImageLimits()


def halves(left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", (96, 64), left)
    image.paste(right, (48, 0, 96, 64))
    return image


def mean_colour(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0)


def test_a_blurhash_decodes_to_the_image_s_layout() -> None:
    image = halves((200, 30, 30), (30, 30, 200))

    made = placeholder_of(image, "blurhash")

    assert blurhash.components(made.value) == (4, 3)  # wider than tall: more columns
    decoded = np.asarray(blurhash.decode(made.value, 96, 64), dtype=np.float64)
    left, right = decoded[:, :24].mean(axis=(0, 1)), decoded[:, 72:].mean(axis=(0, 1))
    assert left[0] > left[2] + 60  # red on the left
    assert right[2] > right[0] + 60  # blue on the right


def test_a_thumbhash_decodes_to_the_image_s_colour_and_aspect_ratio() -> None:
    image = halves((200, 30, 30), (30, 30, 200))

    made = placeholder_of(image, "thumbhash")

    hashed = list(base64.b64decode(made.value))
    assert thumbhash.thumb_hash_to_approximate_aspect_ratio(hashed) == pytest.approx(1.5, rel=0.1)
    average = 255 * np.array(thumbhash.thumb_hash_to_average_rgba(hashed)[:3], dtype=np.float64)
    assert np.abs(average - mean_colour(image)).max() < 12


def test_our_thumbhash_is_the_reference_encoder_s_on_an_opaque_image() -> None:
    image = scene(32, 24).convert("RGBA")

    ours = thumb_hash(image)

    assert list(ours) == thumbhash.rgba_to_thumb_hash(32, 24, list(image.tobytes()))


def test_a_thumbhash_of_a_transparent_image_keeps_its_alpha() -> None:
    image = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 10, 10))  # the left half opaque red

    made = placeholder_of(image, "thumbhash")

    hashed = list(base64.b64decode(made.value))
    red, green, blue, alpha = thumbhash.thumb_hash_to_average_rgba(hashed)
    assert (red, green, blue) == pytest.approx((1.0, 0.0, 0.0), abs=0.02)
    assert alpha == pytest.approx(0.5, abs=0.05)
    assert hashed[2] >> 7 == 1  # the header's has-alpha bit
    assert made.dominant_color == "#ff0000"


def test_the_dominant_colour_is_the_most_common_one_not_the_mean() -> None:
    image = Image.new("RGB", (64, 64), (20, 120, 40))
    image.paste((250, 250, 250), (0, 0, 20, 64))  # a third white: the mean would be pale green

    assert dominant_colour(image.convert("RGBA")) == "#147828"


def test_the_dominant_colour_ignores_transparent_pixels() -> None:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    image.paste((200, 40, 90, 255), (0, 0, 16, 16))

    assert dominant_colour(image) == "#c8285a"


def test_a_photo_s_placeholders_come_with_its_results() -> None:
    pipeline = parse_pipeline(
        {
            "operations": [{"op": "resize", "width": 400}],
            "variants": [
                {"name": "blur", "output": {"format": "webp", "placeholder": "blurhash"}},
                {"name": "thumb", "output": {"format": "jpeg", "placeholder": "thumbhash"}},
                {"name": "plain", "output": {"format": "jpeg"}},
            ],
        },
        LIMITS,
    )

    results = run_pipeline(real_image("xiaomi.heic"), pipeline, LIMITS)

    plain = results["plain"]
    assert plain.placeholder is None
    photo = Image.open(io.BytesIO(plain.data))
    for name in ("blur", "thumb"):
        made = results[name].placeholder
        assert made is not None
        assert re.fullmatch(r"#[0-9a-f]{6}", made.dominant_color)
    blur = results["blur"].placeholder
    assert blur is not None
    decoded = blurhash.decode(blur.value, photo.width // 10, photo.height // 10)
    small = photo.resize((photo.width // 10, photo.height // 10), Image.Resampling.BOX)
    assert np.abs(mean_colour(Image.fromarray(np.uint8(decoded))) - mean_colour(small)).max() < 20


def test_a_transparent_result_s_blurhash_is_made_on_white() -> None:
    source = encoded(scene(64, 48, alpha=True), "PNG")
    pipeline = parse_pipeline({"output": {"format": "png", "placeholder": "blurhash"}}, LIMITS)

    (result,) = run_pipeline(source, pipeline, LIMITS).values()

    assert result.placeholder is not None
    decoded = np.asarray(blurhash.decode(result.placeholder.value, 64, 48), dtype=np.float64)
    assert decoded[:, :4].mean() > 180  # the transparent left edge shows as white


def test_a_placeholder_is_in_srgb_where_the_output_keeps_another_profile() -> None:
    # Red pixels under a profile that swaps red and blue are blue on screen.
    source = encoded(
        Image.new("RGB", (40, 30), (220, 20, 20)), "PNG", icc_profile=swapped_primaries_profile()
    )
    pipeline = parse_pipeline(
        {"output": {"format": "png", "colour_profile": "keep", "placeholder": "blurhash"}}, LIMITS
    )

    (result,) = run_pipeline(source, pipeline, LIMITS).values()

    assert result.placeholder is not None
    red, _, blue = (int(result.placeholder.dominant_color[i : i + 2], 16) for i in (1, 3, 5))
    assert blue > 150 > 60 > red
