"""Cut a rectangle: at x, y, anchored by a gravity (centre by default), or where it matters.

The smart gravities look for the rectangle to keep: `entropy` the one with the busiest
histogram, `attention` the one with the most edges, vivid colour and skin-like tones, `face`
the one centred on the faces a detector finds (else as `attention`). A focal point
`{"x", "y"}` (fractions of the width and height) centres the rectangle on that point.
"""

from __future__ import annotations

from typing import Literal, Self

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pixelfleet.imaging import faces, saliency
from pixelfleet.imaging.errors import ProcessingFailed
from pixelfleet.imaging.gravity import FocalPoint, Gravity, around, place

SmartGravity = Literal["entropy", "attention", "face"]
CropGravity = Literal[Gravity, SmartGravity]
Anchor = CropGravity | FocalPoint
"""Where a crop is anchored: a compass point, a smart gravity or a focal point."""
SMART_GRAVITIES: frozenset[str] = frozenset({"entropy", "attention", "face"})
"""The gravities that look at the pixels (and weigh colour) to choose the rectangle."""

GRAVITY_DESCRIPTION = (
    "a compass point; entropy (the busiest part), attention (edges, vivid colour, skin) or "
    "face (centred on the faces found, else as attention); or a focal point "
    '{"x": 0-1, "y": 0-1} to centre on, in fractions of the width and height'
)

__all__ = [
    "SMART_GRAVITIES",
    "Anchor",
    "CropGravity",
    "CropParams",
    "FocalPoint",
    "Gravity",
    "SmartGravity",
    "apply",
    "corner",
    "output_size",
]


class CropParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["crop"] = "crop"
    width: int = Field(ge=1, description="Width of the kept rectangle.")
    height: int = Field(ge=1, description="Height of the kept rectangle.")
    x: int | None = Field(default=None, ge=0, description="Left edge; give with y.")
    y: int | None = Field(default=None, ge=0, description="Top edge; give with x.")
    gravity: Anchor | None = Field(
        default=None,
        description=f"Where to anchor the rectangle without x and y: {GRAVITY_DESCRIPTION}.",
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


def corner(image: Image.Image, crop: tuple[int, int], anchor: Anchor | None) -> tuple[int, int]:
    """The top-left corner of the `crop`-sized rectangle (no larger than the image) that
    the anchor keeps."""
    if crop == image.size:
        return 0, 0
    match anchor:
        case FocalPoint():
            return around(image.size, crop, anchor)
        case "entropy":
            return saliency.entropy_crop(image, crop)
        case "attention":
            return saliency.attention_crop(image, crop)
        case "face":
            return faces.face_crop(image, crop)
        case None:
            return place(image.size, crop, "center")
        case compass:
            return place(image.size, crop, compass)


def _corner(image: Image.Image, params: CropParams) -> tuple[int, int]:
    if params.x is not None and params.y is not None:
        return params.x, params.y
    return corner(image, (params.width, params.height), params.gravity)


def output_size(size: tuple[int, int], params: CropParams) -> tuple[int, int]:
    _check_fits(size, params)
    return params.width, params.height


def apply(image: Image.Image, params: CropParams) -> Image.Image:
    _check_fits(image.size, params)
    left, top = _corner(image, params)
    return image.crop((left, top, left + params.width, top + params.height))
