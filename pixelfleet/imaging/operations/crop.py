"""Cut a rectangle: at x, y, anchored by a gravity (centre by default), or where it matters.

The smart gravities look for the rectangle to keep: `entropy` the one with the busiest
histogram, `attention` the one with the most edges, vivid colour and skin-like tones, `face`
the one centred on the faces a detector finds (else as `attention`). A focal point
`{"x", "y"}` (fractions of the width and height) centres the rectangle on that point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal, Self, get_args

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pixelfleet.imaging import faces, saliency
from pixelfleet.imaging.errors import ProcessingFailed
from pixelfleet.imaging.gravity import FocalPoint, Gravity, around, place

SmartGravity = Literal["entropy", "attention", "face"]
CropGravity = Literal[Gravity, SmartGravity]
Anchor = CropGravity | FocalPoint
"""Where a crop is anchored: a compass point, a smart gravity or a focal point."""
SMART_GRAVITIES: frozenset[str] = frozenset(get_args(SmartGravity))
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
    "steady_corners",
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


@dataclass
class _SteadyCorners:
    """The smart corners of an animation's first frame, in the order they were found."""

    found: list[tuple[int, int]] = field(default_factory=list)
    asked: int = 0


_steady: ContextVar[_SteadyCorners | None] = ContextVar("steady_corners", default=None)


@contextmanager
def steady_corners() -> Iterator[Callable[[], None]]:
    """Within it, smart gravities look at the first frame only: the n-th smart crop of every
    later frame is cut where the first frame's n-th was, so that an animation's crop holds
    still instead of following what moves. Yields the call that starts the next frame."""
    steady = _SteadyCorners()
    token = _steady.set(steady)

    def next_frame() -> None:
        steady.asked = 0

    try:
        yield next_frame
    finally:
        _steady.reset(token)


Finder = Callable[[Image.Image, tuple[int, int]], tuple[int, int]]


def _smart(image: Image.Image, crop: tuple[int, int], find: Finder) -> tuple[int, int]:
    steady = _steady.get()
    if steady is None:
        return find(image, crop)
    steady.asked += 1
    if steady.asked > len(steady.found):
        steady.found.append(find(image, crop))
    return steady.found[steady.asked - 1]


def corner(image: Image.Image, crop: tuple[int, int], anchor: Anchor | None) -> tuple[int, int]:
    """The top-left corner of the `crop`-sized rectangle (no larger than the image) that
    the anchor keeps."""
    if crop == image.size:
        return 0, 0
    match anchor:
        case FocalPoint():
            return around(image.size, crop, anchor)
        case "entropy":
            return _smart(image, crop, saliency.entropy_crop)
        case "attention":
            return _smart(image, crop, saliency.attention_crop)
        case "face":
            return _smart(image, crop, faces.face_crop)
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
