"""Drop colour, keeping luminance (and alpha, if any)."""

from __future__ import annotations

from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict

from pixelfleet.imaging.colours import has_alpha, to_working_mode


class GrayscaleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["grayscale"] = "grayscale"


def output_size(size: tuple[int, int], params: GrayscaleParams) -> tuple[int, int]:
    return size


def apply(image: Image.Image, params: GrayscaleParams) -> Image.Image:
    working = to_working_mode(image)
    if working.mode in {"L", "LA"}:
        return working  # grey already (the pipeline may take the luma early)
    return working.convert("LA" if has_alpha(working) else "L")
