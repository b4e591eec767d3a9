"""Sharpen with an unsharp mask: add back the difference between the image and its blur."""

from __future__ import annotations

from typing import Literal

from PIL import Image, ImageFilter
from pydantic import BaseModel, ConfigDict, Field

from pixelfleet.imaging.colours import has_alpha, to_working_mode


class SharpenParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["sharpen"] = "sharpen"
    sigma: float = Field(
        default=1.0,
        ge=0.3,
        le=100,
        description="Standard deviation of the blur the mask subtracts, in pixels.",
    )
    amount: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="How much of the difference is added back: 1 doubles local contrast.",
    )


def output_size(size: tuple[int, int], params: SharpenParams) -> tuple[int, int]:
    return size


def apply(image: Image.Image, params: SharpenParams) -> Image.Image:
    working = to_working_mode(image)
    unsharp = ImageFilter.UnsharpMask(
        radius=params.sigma, percent=round(params.amount * 100), threshold=0
    )
    if not has_alpha(working):
        return working.filter(unsharp)
    # Sharpening the alpha channel would ring around soft edges; only colour is sharpened.
    colour = working.convert("RGB" if working.mode == "RGBA" else "L").filter(unsharp)
    colour.putalpha(working.getchannel("A"))
    return colour
