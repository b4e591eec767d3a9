"""Turn the pixels upright as the EXIF orientation tag says, and reset the tag."""

from __future__ import annotations

from typing import Literal

from PIL import ExifTags, Image, ImageOps
from pydantic import BaseModel, ConfigDict

# Orientations 5 to 8 swap width and height.
TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})

# The same table ImageOps.exif_transpose uses.
_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class AutoOrientParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["auto_orient"] = "auto_orient"


def orientation(image: Image.Image) -> int:
    value = image.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def oriented_size(size: tuple[int, int], exif_orientation: int) -> tuple[int, int]:
    if exif_orientation in TRANSPOSING_ORIENTATIONS:
        return size[1], size[0]
    return size


def output_size(size: tuple[int, int], params: AutoOrientParams) -> tuple[int, int]:
    """Unchanged as far as the parameters tell; the pipeline swaps the sides itself,
    from the source's orientation, because only it knows that orientation."""
    return size


def orient(image: Image.Image, exif_orientation: int) -> Image.Image:
    """The pixels turned upright for a known orientation (the tag itself is left alone)."""
    method = _TRANSPOSES.get(exif_orientation)
    return image if method is None else image.transpose(method)


def apply(image: Image.Image, params: AutoOrientParams) -> Image.Image:
    if orientation(image) == 1:
        # exif_transpose would copy the whole image only to change nothing.
        return image
    return ImageOps.exif_transpose(image)
