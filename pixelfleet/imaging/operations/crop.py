"""Cut a rectangle: at x, y, anchored by a gravity (centre by default), or where it matters.

The smart gravities look for the rectangle to keep: `entropy` the one with the busiest
histogram, `attention` the one with the most edges, vivid colour and skin-like tones.
"""

from __future__ import annotations

from typing import Literal, Self

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pixelfleet.imaging import saliency
from pixelfleet.imaging.errors import ProcessingFailed
from pixelfleet.imaging.gravity import Gravity, place

SmartGravity = Literal["entropy", "attention"]
CropGravity = Literal[Gravity, SmartGravity]

__all__ = ["CropGravity", "CropParams", "Gravity", "SmartGravity", "apply", "output_size"]


class CropParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["crop"] = "crop"
    width: int = Field(ge=1, description="Width of the kept rectangle.")
    height: int = Field(ge=1, description="Height of the kept rectangle.")
    x: int | None = Field(default=None, ge=0, description="Left edge; give with y.")
    y: int | None = Field(default=None, ge=0, description="Top edge; give with x.")
    gravity: CropGravity | None = Field(
        default=None,
        description=(
            "Where to anchor the rectangle when x and y are not given: a compass point, "
            "or entropy (the busiest part) or attention (edges, vivid colour, skin)."
        ),
    )

    @model_validator(mode="after")
    def _box_or_gravity(self) -> Self:
        if (self.x is None) != (self.y is None):
            raise ValueError("give x and y together")
        if self.x is not None and self.gravity is not None:
            raise ValueError("give either x and y or a gravity, not both")
        return self


def _check_fits(size: tuple[int, int], params: CropParams) -> None:
    w, h = size
    if params.width > w or params.height > h:
        raise ProcessingFailed(
            f"a {params.width}x{params.height} crop does not fit in a {w}x{h} image"
        )
    if params.x is None or params.y is None:
        return
    if params.x + params.width > w or params.y + params.height > h:
        raise ProcessingFailed(
            f"the crop box ({params.x}, {params.y}, {params.width}x{params.height}) "
            f"falls outside the {w}x{h} image"
        )


def _corner(image: Image.Image, params: CropParams) -> tuple[int, int]:
    crop = (params.width, params.height)
    if params.x is not None and params.y is not None:
        return params.x, params.y
    if crop == image.size:
        return 0, 0
    match params.gravity:
        case "entropy":
            return saliency.entropy_crop(image, crop)
        case "attention":
            return saliency.attention_crop(image, crop)
        case None:
            return place(image.size, crop, "center")
        case compass:
            return place(image.size, crop, compass)


def output_size(size: tuple[int, int], params: CropParams) -> tuple[int, int]:
    _check_fits(size, params)
    return params.width, params.height


def apply(image: Image.Image, params: CropParams) -> Image.Image:
    _check_fits(image.size, params)
    left, top = _corner(image, params)
    return image.crop((left, top, left + params.width, top + params.height))
