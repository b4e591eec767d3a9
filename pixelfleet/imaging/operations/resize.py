"""Resize to a box: fit inside it, contain (pad), cover (crop) or outside (overflow), or fill it."""

from __future__ import annotations

from typing import Literal, Self

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pixelfleet.imaging.colours import Colour, fill_for, parse_colour, to_working_mode
from pixelfleet.imaging.operations.crop import GRAVITY_DESCRIPTION, Anchor, corner

Fit = Literal["contain", "cover", "fill", "inside", "outside"]


class ResizeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["resize"] = "resize"
    width: int | None = Field(default=None, ge=1, description="Box width in pixels.")
    height: int | None = Field(default=None, ge=1, description="Box height in pixels.")
    fit: Fit = Field(
        default="inside",
        description=(
            "inside: fit within the box keeping the aspect ratio; contain: fit and pad to "
            "the exact box; cover: fill the box and crop the overflow (where gravity says); "
            "outside: cover the box keeping the overflow (no crop); fill: stretch."
        ),
    )
    gravity: Anchor | None = Field(
        default=None,
        description=f"With fit cover, what the crop keeps (default center): {GRAVITY_DESCRIPTION}.",
    )
    upscale: bool = Field(default=False, description="Allow enlarging a smaller image.")
    background: Colour = Field(default="#ffffff", description="Padding colour for contain.")

    @model_validator(mode="after")
    def _needs_a_side(self) -> Self:
        if self.width is None and self.height is None:
            raise ValueError("give width, height or both")
        if self.gravity is not None and self.fit != "cover":
            raise ValueError("gravity chooses what a cover crop keeps: give it with fit cover")
        return self


def _proportional(other: int, named: int, side: int) -> int:
    """`other * named / side` rounded once (halves up) in exact integer arithmetic, never 0:
    the side that follows when the side of length `side` becomes `named`."""
    return max(1, (2 * other * named + side) // (2 * side))


def _box(size: tuple[int, int], params: ResizeParams) -> tuple[int, int]:
    """The requested box; a missing side follows the image's aspect ratio."""
    w, h = size
    if params.width is not None and params.height is not None:
        return params.width, params.height
    if params.width is not None:
        return params.width, _proportional(h, params.width, w)
    assert params.height is not None
    return _proportional(w, params.height, h), params.height


def _scale_to(size: tuple[int, int], params: ResizeParams, *, cover: bool) -> tuple[int, int]:
    """The image scaled to touch the box from inside (or, with `cover`, from outside). The
    side that decides the scale is exactly the box's; only the other one is rounded."""
    w, h = size
    if params.width is None or params.height is None:
        # One side named: it decides the scale whatever the fit. The derived side is not
        # a second limit (rounded, it could make the named side come out short).
        return _box(size, params)
    bw, bh = params.width, params.height
    # Compare bw/w with bh/h by cross-multiplying so the matching side is exact.
    width_is_tighter = bw * h <= bh * w
    if width_is_tighter != cover:
        return bw, _proportional(h, bw, w)
    return _proportional(w, bh, h), bh


def _enlarges(size: tuple[int, int], scaled: tuple[int, int]) -> bool:
    return scaled[0] > size[0] or scaled[1] > size[1]


def resampled_size(size: tuple[int, int], params: ResizeParams) -> tuple[int, int]:
    """The size the image is resampled to, before any padding or cropping."""
    box = _box(size, params)
    if params.fit == "fill":
        if params.upscale:
            return box
        return min(box[0], size[0]), min(box[1], size[1])
    scaled = _scale_to(size, params, cover=params.fit in {"cover", "outside"})
    if not params.upscale and _enlarges(size, scaled):
        return size
    return scaled


def output_size(size: tuple[int, int], params: ResizeParams) -> tuple[int, int]:
    box = _box(size, params)
    scaled = resampled_size(size, params)
    match params.fit:
        case "contain":
            return box
        case "cover":
            return min(box[0], scaled[0]), min(box[1], scaled[1])
        case _:
            return scaled


def resample(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """One LANCZOS resample, after a cheap integer reduce() while the image is at least
    twice the target: visually the same, several times faster on large shrinks."""
    if image.size == size:
        return image
    return to_working_mode(image).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def finish(scaled: Image.Image, params: ResizeParams, target: tuple[int, int]) -> Image.Image:
    """The resampled image padded (contain) or cropped (cover) to the output size."""
    if params.fit == "contain":
        if scaled.size == target:
            return scaled
        scaled, fill = fill_for(scaled, parse_colour(params.background))
        canvas = Image.new(scaled.mode, target, fill)
        offset = ((target[0] - scaled.width) // 2, (target[1] - scaled.height) // 2)
        canvas.paste(scaled, offset)
        return canvas
    if params.fit == "cover" and scaled.size != target:
        left, top = corner(scaled, target, params.gravity)
        return scaled.crop((left, top, left + target[0], top + target[1]))
    return scaled


def apply(image: Image.Image, params: ResizeParams) -> Image.Image:
    scaled = resample(image, resampled_size(image.size, params))
    return finish(scaled, params, output_size(image.size, params))
