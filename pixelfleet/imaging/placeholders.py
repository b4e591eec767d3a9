"""What a page shows while an image loads: a BlurHash or ThumbHash string of the result, and
its dominant colour.

Both hashes are made from a copy of at most PLACEHOLDER_SIDE pixels: a placeholder holds a
handful of cosine coefficients, which a small copy gives as well as the whole image, in
milliseconds rather than seconds. BlurHash by the `blurhash` package (the reference
algorithm's Python port). ThumbHash by `thumb_hash` here, a NumPy port of the reference
encoder (evanw/thumbhash, `rgbaToThumbHash`): the Python packages either fail on images with
transparency (thumbhash 0.1.2 builds its alpha channel as a tuple) or pin Pillow below 11
(thumbhash-python)."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Literal

import blurhash
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixelfleet.imaging.colours import flatten_onto_white, has_alpha, to_working_mode

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
    small = to_working_mode(image, alpha=True).convert("RGBA")  # a copy, always
    small.thumbnail((PLACEHOLDER_SIDE, PLACEHOLDER_SIDE), Image.Resampling.BOX, reducing_gap=2.0)
    return small


def _blurhash(rgba: Image.Image) -> str:
    rgb = flatten_onto_white(rgba)
    longer, shorter = BLURHASH_COMPONENTS, BLURHASH_COMPONENTS - 1
    x, y = (longer, shorter) if rgb.width >= rgb.height else (shorter, longer)
    rows = [
        [rgb.getpixel((column, row)) for column in range(rgb.width)] for row in range(rgb.height)
    ]
    value: str = blurhash.encode(rows, components_x=x, components_y=y)
    return value


def _round(value: float) -> int:
    """JavaScript's Math.round (halves up), as the reference encoder rounds."""
    return math.floor(value + 0.5)


def _cosine_terms(
    channel: NDArray[np.float64], nx: int, ny: int
) -> tuple[float, list[float], float]:
    """A channel's DC term, its AC terms scaled into 0-1 (in the reference's order: rows of
    the triangle cx * ny < nx * (ny - cy)), and their scale."""
    height, width = channel.shape
    dc, ac, scale = 0.0, [], 0.0
    for cy in range(ny):
        fy = np.cos(np.pi / height * cy * (np.arange(height) + 0.5))
        cx = 0
        while cx * ny < nx * (ny - cy):
            fx = np.cos(np.pi / width * cx * (np.arange(width) + 0.5))
            f = float(fy @ channel @ fx) / (width * height)
            if cx or cy:
                ac.append(f)
                scale = max(scale, abs(f))
            else:
                dc = f
            cx += 1
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


def thumb_hash(rgba: Image.Image) -> bytes:
    """The ThumbHash of an RGBA image of at most 100x100 pixels."""
    width, height = rgba.size
    if width > 100 or height > 100:
        raise ValueError(f"{width}x{height} does not fit in 100x100")
    pixels = np.asarray(rgba, dtype=np.float64) / 255
    alpha = pixels[..., 3]
    total_alpha = float(alpha.sum())
    average = (pixels[..., :3] * alpha[..., None]).sum(axis=(0, 1)) / (total_alpha or 1)
    transparent = total_alpha < width * height
    l_limit = 5 if transparent else 7
    lx = max(1, _round(l_limit * width / max(width, height)))
    ly = max(1, _round(l_limit * height / max(width, height)))
    rgb = average * (1 - alpha[..., None]) + pixels[..., :3] * alpha[..., None]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    l_dc, l_ac, l_scale = _cosine_terms((r + g + b) / 3, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _cosine_terms((r + g) / 2 - b, 3, 3)
    q_dc, q_ac, q_scale = _cosine_terms(r - g, 3, 3)
    a_dc, a_ac, a_scale = _cosine_terms(alpha, 5, 5) if transparent else (1.0, [], 1.0)
    landscape = width > height
    header24 = (
        _round(63 * l_dc)
        | (_round(31.5 + 31.5 * p_dc) << 6)
        | (_round(31.5 + 31.5 * q_dc) << 12)
        | (_round(31 * l_scale) << 18)
        | (int(transparent) << 23)
    )
    header16 = (
        (ly if landscape else lx)
        | (_round(63 * p_scale) << 3)
        | (_round(63 * q_scale) << 9)
        | (int(landscape) << 15)
    )
    hashed = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    if transparent:
        hashed.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
    nibbles = [_round(15 * f) for f in (*l_ac, *p_ac, *q_ac, *a_ac)]
    for index in range(0, len(nibbles), 2):
        pair = nibbles[index : index + 2]
        hashed.append(pair[0] | (pair[1] << 4 if len(pair) == 2 else 0))
    return bytes(hashed)


def _thumbhash(rgba: Image.Image) -> str:
    return base64.b64encode(thumb_hash(rgba)).decode("ascii")


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
