"""Mirror the image left-right or top-bottom."""

from __future__ import annotations

from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field


class FlipParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["flip"] = "flip"
    direction: Literal["horizontal", "vertical"] = Field(
        default="horizontal", description="horizontal mirrors left-right; vertical, top-bottom."
    )


def output_size(size: tuple[int, int], params: FlipParams) -> tuple[int, int]:
    return size


def apply(image: Image.Image, params: FlipParams) -> Image.Image:
    if params.direction == "horizontal":
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
