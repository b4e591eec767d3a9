"""The operation catalogue: every operation's parameters, function and description, once.

Each operation is a module with a Pydantic parameter model, a pure
`apply(image, params) -> image` and an `output_size(size, params) -> size` that
predicts the result's dimensions without touching pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from PIL import Image
from pydantic import BaseModel, Field

from pixelfleet.imaging.operations import (
    adjust,
    auto_orient,
    blur,
    crop,
    flip,
    flop,
    grayscale,
    pad,
    resize,
    rotate,
    sharpen,
    thumbnail,
    watermark,
)
from pixelfleet.imaging.operations.adjust import AdjustParams
from pixelfleet.imaging.operations.auto_orient import AutoOrientParams
from pixelfleet.imaging.operations.blur import BlurParams
from pixelfleet.imaging.operations.crop import CropParams
from pixelfleet.imaging.operations.flip import FlipParams
from pixelfleet.imaging.operations.flop import FlopParams
from pixelfleet.imaging.operations.grayscale import GrayscaleParams
from pixelfleet.imaging.operations.pad import PadParams
from pixelfleet.imaging.operations.resize import ResizeParams
from pixelfleet.imaging.operations.rotate import RotateParams
from pixelfleet.imaging.operations.sharpen import SharpenParams
from pixelfleet.imaging.operations.thumbnail import ThumbnailParams
from pixelfleet.imaging.operations.watermark import WatermarkParams

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class OperationSpec(Generic[P]):
    name: str
    params: type[P]
    apply: Callable[[Image.Image, P], Image.Image]
    output_size: Callable[[tuple[int, int], P], tuple[int, int]]
    description: str


Operation = Annotated[
    ResizeParams
    | ThumbnailParams
    | CropParams
    | RotateParams
    | FlipParams
    | FlopParams
    | AutoOrientParams
    | GrayscaleParams
    | BlurParams
    | SharpenParams
    | AdjustParams
    | PadParams
    | WatermarkParams,
    Field(discriminator="op"),
]
"""One step of a pipeline, told apart by its `op` field."""

_SPECS: tuple[OperationSpec[Any], ...] = (
    OperationSpec(
        name="resize",
        params=ResizeParams,
        apply=resize.apply,
        output_size=resize.output_size,
        description=(
            "Resize to a box: fit inside, contain (pad), cover (crop), outside (overflow) "
            "or fill (stretch)."
        ),
    ),
    OperationSpec(
        name="thumbnail",
        params=ThumbnailParams,
        apply=thumbnail.apply,
        output_size=thumbnail.output_size,
        description="Shrink quickly to fit a box, keeping the aspect ratio; never enlarges.",
    ),
    OperationSpec(
        name="crop",
        params=CropParams,
        apply=crop.apply,
        output_size=crop.output_size,
        description=(
            "Cut a rectangle at x, y, anchored by a gravity, or where the entropy or "
            "attention is highest."
        ),
    ),
    OperationSpec(
        name="rotate",
        params=RotateParams,
        apply=rotate.apply,
        output_size=rotate.output_size,
        description="Rotate counter-clockwise by any angle, growing the canvas to fit.",
    ),
    OperationSpec(
        name="flip",
        params=FlipParams,
        apply=flip.apply,
        output_size=flip.output_size,
        description="Mirror horizontally or vertically.",
    ),
    OperationSpec(
        name="flop",
        params=FlopParams,
        apply=flop.apply,
        output_size=flop.output_size,
        description="Mirror left-right.",
    ),
    OperationSpec(
        name="auto_orient",
        params=AutoOrientParams,
        apply=auto_orient.apply,
        output_size=auto_orient.output_size,
        description="Turn the image upright as its EXIF orientation says.",
    ),
    OperationSpec(
        name="grayscale",
        params=GrayscaleParams,
        apply=grayscale.apply,
        output_size=grayscale.output_size,
        description="Convert to shades of grey, keeping transparency.",
    ),
    OperationSpec(
        name="blur",
        params=BlurParams,
        apply=blur.apply,
        output_size=blur.output_size,
        description="Gaussian blur with a standard deviation in pixels.",
    ),
    OperationSpec(
        name="sharpen",
        params=SharpenParams,
        apply=sharpen.apply,
        output_size=sharpen.output_size,
        description="Sharpen with an unsharp mask (sigma of the blur, amount added back).",
    ),
    OperationSpec(
        name="adjust",
        params=AdjustParams,
        apply=adjust.apply,
        output_size=adjust.output_size,
        description="Scale brightness, contrast and saturation (1 leaves each unchanged).",
    ),
    OperationSpec(
        name="pad",
        params=PadParams,
        apply=pad.apply,
        output_size=pad.output_size,
        description="Add borders of a colour on any side.",
    ),
    OperationSpec(
        name="watermark",
        params=WatermarkParams,
        apply=watermark.apply,
        output_size=watermark.output_size,
        description=("Lay translucent text, or an image uploaded earlier, at a gravity position."),
    ),
)

OPERATIONS: dict[str, OperationSpec[Any]] = {spec.name: spec for spec in _SPECS}

__all__ = [
    "OPERATIONS",
    "AdjustParams",
    "AutoOrientParams",
    "BlurParams",
    "CropParams",
    "FlipParams",
    "FlopParams",
    "GrayscaleParams",
    "Operation",
    "OperationSpec",
    "PadParams",
    "ResizeParams",
    "RotateParams",
    "SharpenParams",
    "ThumbnailParams",
    "WatermarkParams",
]
