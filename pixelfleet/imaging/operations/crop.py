"""Cut a rectangle: at x, y, or anchored by a gravity (centre by default)."""

from __future__ import annotations

from typing import Literal, Self

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pixelfleet.imaging.errors import ProcessingFailed

Gravity = Literal[
    "center", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest"
]


class CropParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["crop"] = "crop"
    width: int = Field(ge=1, description="Width of the kept rectangle.")
    height: int = Field(ge=1, description="Height of the kept rectangle.")
    x: int | None = Field(default=None, ge=0, description="Left edge; give with y.")
    y: int | None = Field(default=None, ge=0, description="Top edge; give with x.")
    gravity: Gravity | None = Field(
        default=None, description="Where to anchor the rectangle when x and y are not given."
    )

    @model_validator(mode="after")
    def _box_or_gravity(self) -> Self:
        if (self.x is None) != (self.y is None):
            raise ValueError("give x and y together")
        if self.x is not None and self.gravity is not None:
            raise ValueError("give either x and y or a gravity, not both")
        return self


def _box(size: tuple[int, int], params: CropParams) -> tuple[int, int, int, int]:
    w, h = size
    if params.width > w or params.height > h:
        raise ProcessingFailed(
            f"a {params.width}x{params.height} crop does not fit in a {w}x{h} image"
        )
    if params.x is not None and params.y is not None:
        left, top = params.x, params.y
        if left + params.width > w or top + params.height > h:
            raise ProcessingFailed(
                f"the crop box ({left}, {top}, {params.width}x{params.height}) "
                f"falls outside the {w}x{h} image"
            )
        return left, top, left + params.width, top + params.height
    gravity = params.gravity or "center"
    spare_x, spare_y = w - params.width, h - params.height
    left = 0 if "west" in gravity else spare_x if "east" in gravity else spare_x // 2
    top = 0 if "north" in gravity else spare_y if "south" in gravity else spare_y // 2
    return left, top, left + params.width, top + params.height


def output_size(size: tuple[int, int], params: CropParams) -> tuple[int, int]:
    _box(size, params)
    return params.width, params.height


def apply(image: Image.Image, params: CropParams) -> Image.Image:
    return image.crop(_box(image.size, params))
