"""Gaussian blur; transparent areas do not bleed their hidden colour into the visible ones."""

from __future__ import annotations

from typing import Literal

from PIL import Image, ImageFilter
from pydantic import BaseModel, ConfigDict, Field

from pixelfleet.imaging.colours import has_alpha, to_working_mode


class BlurParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["blur"] = "blur"
    sigma: float = Field(
        ge=0.3, le=100, description="Standard deviation of the Gaussian, in pixels."
    )


def output_size(size: tuple[int, int], params: BlurParams) -> tuple[int, int]:
    return size


def gaussian(image: Image.Image, sigma: float) -> Image.Image:
    """The image blurred in a working mode, with alpha premultiplied while it is blurred."""
    working = to_working_mode(image)
    if not has_alpha(working):
        return working.filter(ImageFilter.GaussianBlur(sigma))
    premultiplied = "RGBa" if working.mode == "RGBA" else "La"
    blurred = working.convert(premultiplied).filter(ImageFilter.GaussianBlur(sigma))
    return blurred.convert(working.mode)


def apply(image: Image.Image, params: BlurParams) -> Image.Image:
    # Pillow's GaussianBlur takes the standard deviation as its "radius" (three box passes).
    return gaussian(image, params.sigma)
