"""Rotate counter-clockwise by any angle, growing the canvas to hold the whole image."""

from __future__ import annotations

import math
from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from pixelfleet.imaging.colours import TRANSPARENT, WHITE, Colour, fill_for, has_alpha, parse_colour

_QUARTER_TURNS = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


class RotateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["rotate"] = "rotate"
    angle: float = Field(allow_inf_nan=False, description="Degrees, counter-clockwise.")
    background: Colour | None = Field(
        default=None,
        description=(
            "Colour of the uncovered corners; transparent if the image has alpha, else white."
        ),
    )


def _normalised(angle: float) -> float:
    return angle % 360.0


def output_size(size: tuple[int, int], params: RotateParams) -> tuple[int, int]:
    """The expanded canvas, computed as `Image.rotate(expand=True)` computes it."""
    angle = _normalised(params.angle)
    w, h = size
    if angle in (0.0, 180.0):
        return size
    if angle in (90.0, 270.0):
        return h, w
    radians = -math.radians(angle)
    cos, sin = round(math.cos(radians), 15), round(math.sin(radians), 15)
    cx, cy = w / 2, h / 2
    xs, ys = [], []
    for x, y in ((0, 0), (w, 0), (w, h), (0, h)):
        xs.append(cos * (x - cx) + sin * (y - cy) + cx)
        ys.append(-sin * (x - cx) + cos * (y - cy) + cy)
    return math.ceil(max(xs)) - math.floor(min(xs)), math.ceil(max(ys)) - math.floor(min(ys))


def apply(image: Image.Image, params: RotateParams) -> Image.Image:
    angle = _normalised(params.angle)
    if angle == 0.0:
        return image
    if angle in (90.0, 180.0, 270.0):
        # Quarter turns move pixels exactly; no resampling blur, no padding.
        return image.transpose(_QUARTER_TURNS[int(angle)])
    if params.background is not None:
        colour = parse_colour(params.background)
    else:
        colour = TRANSPARENT if has_alpha(image) else WHITE
    working, fill = fill_for(image, colour)
    return working.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
