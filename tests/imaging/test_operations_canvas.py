import uuid
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydantic import ValidationError
from sample_images import as_array, scene
from similarity import ssim

from pixelfleet.imaging.errors import ProcessingFailed
from pixelfleet.imaging.gravity import Gravity
from pixelfleet.imaging.operations import flop, pad, watermark
from pixelfleet.imaging.operations.flop import FlopParams
from pixelfleet.imaging.operations.pad import PadParams
from pixelfleet.imaging.operations.watermark import WatermarkParams

ASSET = uuid.UUID("6f1c1d1e-0000-4000-8000-000000000001")


def changed_box(before: Image.Image, after: Image.Image) -> tuple[int, int, int, int] | None:
    """The bounding box (left, top, right, bottom) of the pixels that differ."""
    diff = np.any(as_array(before.convert("RGBA")) != as_array(after.convert("RGBA")), axis=-1)
    if not diff.any():
        return None
    rows, cols = np.nonzero(diff)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def test_flop_mirrors_left_to_right() -> None:
    source = scene(64, 48)

    result = flop.apply(source, FlopParams())

    assert np.array_equal(as_array(result), np.fliplr(as_array(source)))


def test_pad_adds_each_border_in_the_background_colour() -> None:
    source = scene(60, 40)
    params = PadParams(top=5, right=7, bottom=3, left=11, background="#102030")

    result = pad.apply(source, params)

    expected = np.zeros((48, 78, 3), dtype=np.uint8)
    expected[:] = (16, 32, 48)
    expected[5:45, 11:71] = as_array(source)
    assert result.size == pad.output_size(source.size, params) == (78, 48)
    assert np.array_equal(as_array(result), expected)


def test_pad_defaults_to_white_or_to_transparent_when_the_image_has_alpha() -> None:
    opaque = pad.apply(scene(20, 20), PadParams(top=2))
    transparent = pad.apply(scene(20, 20, alpha=True), PadParams(left=2))

    assert opaque.getpixel((10, 0)) == (255, 255, 255)
    assert transparent.getpixel((0, 10)) == (0, 0, 0, 0)


def test_pad_with_a_colour_on_a_grey_image_turns_it_to_colour() -> None:
    result = pad.apply(scene(20, 20).convert("L"), PadParams(bottom=4, background="red"))

    assert result.mode == "RGB"
    assert result.getpixel((10, 22)) == (255, 0, 0)


def test_pad_refuses_negative_borders() -> None:
    with pytest.raises(ValidationError):
        PadParams(top=-1)


def text_reference(
    base: Image.Image,
    text: str,
    size: int,
    colour: tuple[int, int, int],
    opacity: float,
    xy: tuple[int, int],
) -> Image.Image:
    """Pillow's own drawing of the text, composited by hand at a known ink position."""
    font = ImageFont.load_default(size=size)
    left, top, _, _ = font.getbbox(text)
    layer = Image.new("RGBA", base.size, (*colour, 0))
    mask = Image.new("L", base.size, 0)
    ImageDraw.Draw(mask).text((xy[0] - left, xy[1] - top), text, fill=255, font=font)
    layer.putalpha(mask.point(lambda v: round(v * opacity)))
    return Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB")


def ink_size(text: str, size: int) -> tuple[int, int]:
    left, top, right, bottom = ImageFont.load_default(size=size).getbbox(text)
    return int(right - left), int(bottom - top)


def test_text_watermark_is_drawn_in_the_southeast_corner_by_default() -> None:
    base = scene(320, 200)
    params = WatermarkParams(text="PixelFleet", size=30, colour="#ffff00", opacity=0.7, margin=10)

    result = watermark.apply(base, params)

    w, h = ink_size("PixelFleet", 30)
    expected = text_reference(
        base, "PixelFleet", 30, (255, 255, 0), 0.7, (320 - 10 - w, 200 - 10 - h)
    )
    assert result.size == base.size
    assert ssim(result, expected) > 0.99
    box = changed_box(base, result)
    assert box is not None
    assert box[2] <= 310
    assert box[3] <= 190
    assert box[0] >= 320 - 10 - w - 1


@pytest.mark.parametrize(
    ("position", "corner"),
    [
        ("northwest", (0, 0)),
        ("north", (1, 0)),
        ("northeast", (2, 0)),
        ("west", (0, 1)),
        ("center", (1, 1)),
        ("east", (2, 1)),
        ("southwest", (0, 2)),
        ("south", (1, 2)),
        ("southeast", (2, 2)),
    ],
)
def test_text_watermark_lands_in_the_third_its_position_names(
    position: Gravity, corner: tuple[int, int]
) -> None:
    base = scene(300, 300)

    result = watermark.apply(
        base, WatermarkParams(text="Hi", size=40, opacity=1, position=position)
    )

    box = changed_box(base, result)
    assert box is not None
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    assert (int(centre[0] // 100), int(centre[1] // 100)) == corner


def test_text_watermark_keeps_its_margin_from_the_edges() -> None:
    base = Image.new("RGB", (200, 120), (0, 0, 0))

    result = watermark.apply(
        base, WatermarkParams(text="mark", size=20, opacity=1, position="northwest", margin=25)
    )

    box = changed_box(base, result)
    assert box is not None
    assert box[0] >= 25
    assert box[1] >= 25
    assert box[0] <= 27
    assert box[1] <= 27


def test_a_larger_text_size_makes_a_larger_mark() -> None:
    base = scene(400, 200)

    small = changed_box(base, watermark.apply(base, WatermarkParams(text="abc", size=12)))
    large = changed_box(base, watermark.apply(base, WatermarkParams(text="abc", size=48)))

    assert small is not None
    assert large is not None
    assert (large[2] - large[0]) > 3 * (small[2] - small[0])


def test_text_watermark_opacity_blends_with_the_image() -> None:
    base = Image.new("RGB", (200, 100), (0, 0, 255))

    invisible = watermark.apply(base, WatermarkParams(text="AAAA", size=60, opacity=0))
    half = watermark.apply(
        base, WatermarkParams(text="AAAA", size=60, colour="#ff0000", opacity=0.5)
    )

    assert np.array_equal(as_array(invisible), as_array(base))
    reds = as_array(half)[..., 0]
    assert 120 <= reds.max() <= 135  # half of the red over blue, never more


def test_a_text_larger_than_the_image_is_clipped_without_drawing_the_hidden_part() -> None:
    base = scene(50, 30)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow warns when asked for a huge bitmap
        result = watermark.apply(base, WatermarkParams(text="W" * 200, size=1000, opacity=1))

    assert result.size == (50, 30)


@pytest.mark.parametrize("position", ["west", "center", "east"])
def test_a_line_wider_than_the_image_shows_as_if_drawn_whole(position: Gravity) -> None:
    base = scene(300, 80)
    text = "The quick brown fox jumps over the lazy dog " * 3
    params = WatermarkParams(text=text, size=40, colour="#00ffff", opacity=0.8, position=position)

    result = watermark.apply(base, params)

    w, h = ink_size(text, 40)
    x = {"west": 16, "center": (300 - w) // 2, "east": 300 - 16 - w}[position]
    expected = text_reference(base, text, 40, (0, 255, 255), 0.8, (x, (80 - h) // 2))
    assert ssim(result, expected) > 0.99


def test_a_coloured_mark_on_a_grey_image_turns_it_to_colour_keeping_alpha() -> None:
    grey = scene(120, 80, alpha=True).convert("LA")

    result = watermark.apply(grey, WatermarkParams(text="x", size=40, colour="red", opacity=1))

    assert result.mode == "RGBA"
    assert np.array_equal(as_array(result)[..., 3], as_array(grey)[..., 1])


def test_watermark_leaves_its_input_untouched() -> None:
    base = scene(120, 80)
    before = as_array(base).copy()

    watermark.apply(base, WatermarkParams(text="mark", size=30, opacity=1))

    assert np.array_equal(as_array(base), before)


def logo() -> Image.Image:
    """A red disc on transparency."""
    image = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((0, 0, 79, 79), fill=(220, 20, 20, 255))
    return image


def test_asset_watermark_is_scaled_to_a_fraction_of_the_width_and_placed() -> None:
    base = scene(400, 300)
    params = WatermarkParams(asset=ASSET, scale=0.25, opacity=1, position="center")

    result = watermark.apply(base, params, logo())

    mark = logo().resize((100, 100), Image.Resampling.LANCZOS)
    expected = base.convert("RGBA")
    expected.alpha_composite(mark, (150, 100))
    assert ssim(result, expected.convert("RGB")) > 0.98
    box = changed_box(base, result)
    assert box is not None
    assert abs((box[2] - box[0]) - 100) <= 2


def test_asset_watermark_opacity_scales_its_alpha() -> None:
    base = Image.new("RGB", (200, 200), (0, 0, 255))
    params = WatermarkParams(asset=ASSET, scale=0.5, opacity=0.5, position="northwest", margin=0)

    result = watermark.apply(base, params, Image.new("RGB", (10, 10), (255, 0, 0)))

    assert result.getpixel((50, 50)) == (128, 0, 127)
    assert result.getpixel((150, 150)) == (0, 0, 255)


def test_an_asset_watermark_without_its_image_fails_processing() -> None:
    with pytest.raises(ProcessingFailed, match=str(ASSET)):
        watermark.apply(scene(40, 40), WatermarkParams(asset=ASSET))


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"text": "a", "asset": str(ASSET)},
        {"text": ""},
        {"text": "x" * 201},
        {"text": "two\nlines"},
        {"text": "a", "scale": 0.5},
        {"asset": str(ASSET), "size": 20},
        {"asset": str(ASSET), "colour": "red"},
        {"asset": "not-a-uuid"},
        {"text": "a", "opacity": 1.5},
        {"text": "a", "position": "middle"},
        {"asset": str(ASSET), "scale": 0},
    ],
)
def test_watermark_params_take_either_text_or_an_asset_with_their_own_options(
    raw: dict[str, object],
) -> None:
    with pytest.raises(ValidationError):
        WatermarkParams.model_validate(raw)
