"""Mirror the image left-right (flip's horizontal direction, under its ImageMagick name)."""

from __future__ import annotations

from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict


class FlopParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["flop"] = "flop"


def output_size(size: tuple[int, int], params: FlopParams) -> tuple[int, int]:
    return size


def apply(image: Image.Image, params: FlopParams) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
