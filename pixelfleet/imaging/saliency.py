"""Where the interesting part of an image is, for smart crops; all on a small copy.

Both searches look at a copy whose longer side is ANALYSIS_SIDE pixels, so they cost
the same few milliseconds on any source, and answer in the source's coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from PIL import Image, ImageChops, ImageFilter, ImageMath

from pixelfleet.imaging.colours import to_working_mode

ANALYSIS_SIDE = 128
_GRID_STEPS = 24
"""Window positions tried per axis in the entropy search's coarse pass."""

# How much each cue weighs in the attention map.
_EDGE_WEIGHT = 1.0
_SATURATION_WEIGHT = 0.5
_SKIN_WEIGHT = 1.5

# Skin-like: hue 0-35 degrees (0-25 of 255), moderate saturation, not dark.
_SKIN_HUE = range(0, 26)
_SKIN_SATURATION = range(50, 176)
_SKIN_VALUE = range(90, 256)


def _small_copy(image: Image.Image) -> tuple[Image.Image, float, float]:
    """An RGB copy at most ANALYSIS_SIDE on its longer side, and the scale on each axis."""
    working = to_working_mode(image).convert("RGB")
    factor = ANALYSIS_SIDE / max(image.size)
    if factor >= 1:
        return working, 1.0, 1.0
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    small = working.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return small, size[0] / image.width, size[1] / image.height


def _window(size: tuple[int, int], sx: float, sy: float) -> tuple[int, int]:
    return max(1, round(size[0] * sx)), max(1, round(size[1] * sy))


def _to_source(
    position: tuple[float, float],
    spare: tuple[int, int],
    image: tuple[int, int],
    crop: tuple[int, int],
) -> tuple[int, int]:
    """A window position on the small copy, as the same relative position in the source."""
    corner = []
    for at, small_spare, side, length in zip(position, spare, image, crop, strict=True):
        source_spare = side - length
        share = at / small_spare if small_spare > 0 else 0.5
        corner.append(min(max(round(share * source_spare), 0), source_spare))
    return corner[0], corner[1]


def _best(
    positions: Iterable[tuple[int, int]], score: Callable[[int, int], float]
) -> tuple[float, float]:
    """The middle of the highest-scoring positions: a plateau of equally good windows
    (a featureless image, a small subject) resolves to its centre."""
    scored = [(score(x, y), x, y) for x, y in positions]
    top = max(value for value, _, _ in scored)
    tolerance = 1e-9 * max(abs(top), 1.0)
    ties = [(x, y) for value, x, y in scored if value >= top - tolerance]
    return sum(x for x, _ in ties) / len(ties), sum(y for _, y in ties) / len(ties)


def _steps(spare: int, count: int) -> list[int]:
    """At most count + 1 evenly spread positions from 0 to `spare`, both ends included."""
    if spare <= count:
        return list(range(spare + 1))
    return sorted({round(i * spare / count) for i in range(count + 1)})


def entropy_crop(image: Image.Image, size: tuple[int, int]) -> tuple[int, int]:
    """The top-left corner of the `size` window whose grey histogram has the most entropy."""
    small, sx, sy = _small_copy(image)
    grey = small.convert("L")
    w, h = _window(size, sx, sy)
    w, h = min(w, grey.width), min(h, grey.height)
    spare_x, spare_y = grey.width - w, grey.height - h

    def score(x: int, y: int) -> float:
        return grey.crop((x, y, x + w, y + h)).entropy()

    xs, ys = _steps(spare_x, _GRID_STEPS), _steps(spare_y, _GRID_STEPS)
    x, y = _best(((x, y) for x in xs for y in ys), score)
    # Refine around the coarse winner, one pixel of the small copy at a time.
    reach_x, reach_y = spare_x / _GRID_STEPS, spare_y / _GRID_STEPS
    near_xs = range(max(0, math.floor(x - reach_x)), min(spare_x, math.ceil(x + reach_x)) + 1)
    near_ys = range(max(0, math.floor(y - reach_y)), min(spare_y, math.ceil(y + reach_y)) + 1)
    near = ((nx, ny) for nx in near_xs for ny in near_ys)
    return _to_source(_best(near, score), (spare_x, spare_y), image.size, size)


def _lookup(allowed: range) -> list[int]:
    return [255 if v in allowed else 0 for v in range(256)]


def attention_map(image: Image.Image) -> Image.Image:
    """A grey map (mode F) of how much each spot draws the eye: edges, vivid colour, skin."""
    hue, saturation, value = image.convert("HSV").split()
    edges = image.convert("L").filter(ImageFilter.FIND_EDGES)
    vivid = ImageChops.multiply(saturation, value)
    skin = ImageChops.multiply(
        ImageChops.multiply(
            hue.point(_lookup(_SKIN_HUE)), saturation.point(_lookup(_SKIN_SATURATION))
        ),
        value.point(_lookup(_SKIN_VALUE)),
    )
    combined = ImageMath.lambda_eval(
        lambda a: a["e"] * _EDGE_WEIGHT + a["v"] * _SATURATION_WEIGHT + a["s"] * _SKIN_WEIGHT,
        e=edges.convert("F"),
        v=vivid.convert("F"),
        s=skin.convert("F"),
    )
    assert isinstance(combined, Image.Image)
    return combined


def attention_crop(image: Image.Image, size: tuple[int, int]) -> tuple[int, int]:
    """The top-left corner of the `size` window holding the most attention."""
    small, sx, sy = _small_copy(image)
    saliency = attention_map(small)
    width, height = saliency.size
    w, h = _window(size, sx, sy)
    w, h = min(w, width), min(h, height)
    values = [float(v) for v in saliency.get_flattened_data()]  # type: ignore[arg-type]
    # A summed-area table makes every window's total four lookups.
    table = [[0.0] * (width + 1) for _ in range(height + 1)]
    for row in range(height):
        running = 0.0
        above, current = table[row], table[row + 1]
        for col in range(width):
            running += values[row * width + col]
            current[col + 1] = above[col + 1] + running

    def total(x: int, y: int, w: int, h: int) -> float:
        return table[y + h][x + w] - table[y][x + w] - table[y + h][x] + table[y][x]

    # The window's middle counts twice: a subject is better centred than cut at an edge.
    inner_w, inner_h = max(1, w // 2), max(1, h // 2)
    inner_x, inner_y = (w - inner_w) // 2, (h - inner_h) // 2

    def score(x: int, y: int) -> float:
        return total(x, y, w, h) + total(x + inner_x, y + inner_y, inner_w, inner_h)

    spare_x, spare_y = width - w, height - h
    positions = ((x, y) for x in range(spare_x + 1) for y in range(spare_y + 1))
    return _to_source(_best(positions, score), (spare_x, spare_y), image.size, size)
