"""What a page shows while an image loads: a BlurHash or ThumbHash string of the result, and
its dominant colour.

Both hashes are made by their reference algorithms' Python ports (the `blurhash` and
`thumbhash` packages) from a copy of at most PLACEHOLDER_SIDE pixels: a placeholder holds a
handful of cosine coefficients, which a small copy gives as well as the whole image, in a few
milliseconds of pure Python rather than seconds."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal

import blurhash
import numpy as np
import thumbhash
from PIL import Image

from pixelfleet.imaging.colours import has_alpha, to_working_mode

PlaceholderKind = Literal["blurhash", "thumbhash"]

PLACEHOLDER_SIDE = 32
"""The longer side of the copy a hash is made from."""
BLURHASH_COMPONENTS = 4
"""Cosine components along the longer side (3 along the shorter), as BlurHash suggests."""
PALETTE_COLOURS = 8
"""The colours the dominant one is chosen among."""
_OPAQUE = 128


@dataclass(frozen=True)
class Placeholder:
    kind: PlaceholderKind
    value: str
    """The BlurHash string, or the ThumbHash bytes in base64."""
    dominant_color: str
    """`#rrggbb`: the most common colour of the image's opaque pixels, among a few."""


def _small_rgba(image: Image.Image) -> Image.Image:
    working = to_working_mode(image, alpha=True).convert("RGBA")
    small = working.copy()
    small.thumbnail((PLACEHOLDER_SIDE, PLACEHOLDER_SIDE), Image.Resampling.BOX, reducing_gap=2.0)
    return small


def _on_white(rgba: Image.Image) -> Image.Image:
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _blurhash(rgba: Image.Image) -> str:
    rgb = _on_white(rgba)
    longer, shorter = BLURHASH_COMPONENTS, BLURHASH_COMPONENTS - 1
    x, y = (longer, shorter) if rgb.width >= rgb.height else (shorter, longer)
    rows = [
        [rgb.getpixel((column, row)) for column in range(rgb.width)] for row in range(rgb.height)
    ]
    value: str = blurhash.encode(rows, components_x=x, components_y=y)
    return value


def _thumbhash(rgba: Image.Image) -> str:
    hashed = thumbhash.rgba_to_thumb_hash(rgba.width, rgba.height, list(rgba.tobytes()))
    return base64.b64encode(bytes(hashed)).decode("ascii")


def dominant_colour(rgba: Image.Image) -> str:
    """The most common of a few colours the opaque pixels are reduced to, as `#rrggbb`."""
    rgb = rgba.convert("RGB")
    if has_alpha(rgba):
        pixels = np.asarray(rgba)
        opaque = pixels[pixels[..., 3] >= _OPAQUE][:, :3]
        if not len(opaque):
            return "#ffffff"
        rgb = Image.fromarray(np.ascontiguousarray(opaque[None, ...]), "RGB")
    palette = rgb.quantize(PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT)
    counts: list[tuple[int, int]] = palette.getcolors() or []  # type: ignore[assignment]
    _, index = max(counts)
    colours = palette.getpalette() or []
    red, green, blue = colours[3 * index : 3 * index + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"


def placeholder_of(image: Image.Image, kind: PlaceholderKind) -> Placeholder:
    """The placeholder of `kind` for `image` (a result, as it will be delivered)."""
    small = _small_rgba(image)
    value = _blurhash(small) if kind == "blurhash" else _thumbhash(small)
    return Placeholder(kind, value, dominant_colour(small))
