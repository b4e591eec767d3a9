"""Add borders of a colour around the image."""

from __future__ import annotations

from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from pixelfleet.imaging.colours import TRANSPARENT, WHITE, Colour, fill_for, has_alpha, parse_colour


class PadParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["pad"] = "pad"
    top: int = Field(default=0, ge=0, description="Pixels added above.")
    right: int = Field(default=0, ge=0, description="Pixels added on the right.")
    bottom: int = Field(default=0, ge=0, description="Pixels added below.")
    left: int = Field(default=0, ge=0, description="Pixels added on the left.")
    background: Colour | None = Field(
        default=None,
        description="Colour of the borders; transparent if the image has alpha, else white.",
    )


def output_size(size: tuple[int, int], params: PadParams) -> tuple[int, int]:
    return size[0] + params.left + params.right, size[1] + params.top + params.bottom


def apply(image: Image.Image, params: PadParams) -> Image.Image:
    target = output_size(image.size, params)
    if target == image.size:
        return image
    if params.background is not None:
        colour = parse_colour(params.background)
    else:
        colour = TRANSPARENT if has_alpha(image) else WHITE
    working, fill = fill_for(image, colour)
    canvas = Image.new(working.mode, target, fill)
    canvas.paste(working, (params.left, params.top))
    return canvas
