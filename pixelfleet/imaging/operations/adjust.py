"""Brightness, contrast and saturation, each a multiplier (1 leaves it unchanged)."""

from __future__ import annotations

from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from pixelfleet.imaging.colours import has_alpha, to_working_mode

# ITU-R 601 luma weights, the ones Pillow's convert("L") uses.
_LUMA = (0.299, 0.587, 0.114)


class AdjustParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["adjust"] = "adjust"
    brightness: float = Field(
        default=1.0,
        ge=0,
        le=4,
        description="Multiplies every value: 0 is black, 2 twice as bright.",
    )
    contrast: float = Field(
        default=1.0,
        ge=0,
        le=4,
        description="Scales distances from the mean grey: 0 is flat grey, 2 twice the contrast.",
    )
    saturation: float = Field(
        default=1.0, ge=0, le=4, description="Scales colourfulness: 0 is grey, 2 twice as vivid."
    )


def output_size(size: tuple[int, int], params: AdjustParams) -> tuple[int, int]:
    return size


def _clip(value: float) -> int:
    return min(255, max(0, round(value)))


def _mean_grey(image: Image.Image, curve: list[int]) -> float:
    """The mean luma of the image after `curve`, read from its histogram."""
    histogram = image.histogram()
    pixels = image.width * image.height
    means = []
    for band in range(len(image.getbands())):
        counts = histogram[band * 256 : (band + 1) * 256]
        means.append(sum(n * curve[v] for v, n in enumerate(counts)) / pixels)
    if len(means) == 1:
        return means[0]
    return sum(weight * mean for weight, mean in zip(_LUMA, means, strict=True))


def apply(image: Image.Image, params: AdjustParams) -> Image.Image:
    working = to_working_mode(image)
    alpha = working.getchannel("A") if has_alpha(working) else None
    colour = working.convert("RGB" if working.mode in {"RGB", "RGBA"} else "L")
    if params.brightness != 1 or params.contrast != 1:
        # Brightness and contrast are both per-value curves: one lookup table applies both.
        curve = [_clip(v * params.brightness) for v in range(256)]
        if params.contrast != 1:
            mean = _mean_grey(colour, curve)
            curve = [_clip(mean + (v - mean) * params.contrast) for v in curve]
        colour = colour.point(curve * len(colour.getbands()))
    if params.saturation != 1 and colour.mode == "RGB":
        grey = colour.convert("L").convert("RGB")
        colour = Image.blend(grey, colour, params.saturation)
    if alpha is not None:
        colour.putalpha(alpha)
    return colour
