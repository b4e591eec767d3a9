"""Shrink to fit a box, keeping the aspect ratio; never enlarges (Pillow's thumbnail rule)."""

from __future__ import annotations

import math
from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from pixelfleet.imaging.colours import to_working_mode


class ThumbnailParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["thumbnail"] = "thumbnail"
    width: int = Field(ge=1, description="Box width in pixels.")
    height: int = Field(ge=1, description="Box height in pixels.")


def output_size(size: tuple[int, int], params: ThumbnailParams) -> tuple[int, int]:
    """The size `Image.thumbnail` would produce, without touching pixels."""
    w, h = size
    x, y = params.width, params.height
    if x >= w and y >= h:
        return size
    aspect = w / h
    # Pick whichever of floor/ceil keeps the aspect ratio closest, as Pillow does.
    if x / y >= aspect:
        candidates = (math.floor(y * aspect), math.ceil(y * aspect))
        x = max(min(candidates, key=lambda n: abs(aspect - n / y)), 1)
    else:
        candidates = (math.floor(x / aspect), math.ceil(x / aspect))
        y = max(min(candidates, key=lambda n: 0 if n == 0 else abs(aspect - x / n)), 1)
    return x, y


def apply(image: Image.Image, params: ThumbnailParams) -> Image.Image:
    size = output_size(image.size, params)
    if size == image.size:
        return image
    # A reducing gap shrinks by whole factors first: much faster, visually the same.
    return to_working_mode(image).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
