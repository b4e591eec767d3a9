"""PNG's zlib options: quick for photographs, thorough where it pays (flat greys and palettes)."""

import pytest
from PIL import Image, ImageDraw, ImageFont
from sample_images import encoded, photo, reopened, scene

from pixelfleet.imaging.codecs import encode
from pixelfleet.imaging.png_effort import THOROUGH_LEVEL, png_options
from pixelfleet.imaging.spec import OutputSpec

PNG = OutputSpec(format="png")
THOROUGH = {"compress_level": THOROUGH_LEVEL}

PHOTOGRAPHS = {
    "colour photo": lambda: photo(1024, 768),
    "grey photo": lambda: photo(1280, 720).convert("L"),
}
FLAT_GREYS_AND_PALETTES = {
    "flat grey": lambda: scene(800, 600).convert("L"),
    "flat grey with alpha": lambda: scene(800, 600, alpha=True).convert("LA"),
    "flat palette": lambda: scene(800, 600).quantize(256),
}
EVERY_KIND = {
    **PHOTOGRAPHS,
    **FLAT_GREYS_AND_PALETTES,
    "flat colour": lambda: scene(800, 600),
    "flat colour with alpha": lambda: scene(800, 600, alpha=True),
    "screenshot": lambda: screenshot(),
}


def screenshot() -> Image.Image:
    """Lines of text: repeats far apart, which run-length coding alone would double."""
    image = Image.new("RGB", (1280, 800), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    for top in range(0, 800, 18):
        line = "The quick brown fox jumps over the lazy dog 0123456789 " * 2
        draw.text((10 + top * 7 % 40, top), line, fill=(30, 30, 30), font=font)
    return image


@pytest.mark.parametrize("name", list(PHOTOGRAPHS))
def test_a_photograph_is_not_written_at_the_slow_thorough_level(name: str) -> None:
    assert png_options(PHOTOGRAPHS[name]()) != THOROUGH


@pytest.mark.parametrize("name", list(FLAT_GREYS_AND_PALETTES))
def test_flat_greys_and_palettes_are_written_at_the_thorough_level(name: str) -> None:
    image = FLAT_GREYS_AND_PALETTES[name]()

    result = encode(image, PNG)

    assert png_options(image) == THOROUGH
    assert len(result.data) <= len(encoded(image, "PNG", compress_level=THOROUGH_LEVEL))


@pytest.mark.parametrize("name", list(EVERY_KIND))
def test_no_png_grows_by_more_than_a_tenth_over_zlibs_default_level(name: str) -> None:
    image = EVERY_KIND[name]()

    result = encode(image, PNG)

    assert len(result.data) <= 1.1 * len(encoded(image, "PNG", compress_level=6))
    assert reopened(result.data).tobytes() == image.tobytes()


def test_small_images_are_written_at_the_thorough_level() -> None:
    assert png_options(photo(200, 150)) == THOROUGH
    assert png_options(photo(4000, 20)) != THOROUGH  # larger: its bands decide
