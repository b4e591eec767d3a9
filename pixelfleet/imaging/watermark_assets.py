"""The images a pipeline's watermarks name (uploaded assets), made ready to lay on a result."""

from __future__ import annotations

import uuid

from PIL import Image

from pixelfleet.imaging.codecs import decode, open_source
from pixelfleet.imaging.colours import to_working_mode
from pixelfleet.imaging.errors import ImageRejected, ProcessingFailed
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations.auto_orient import orient
from pixelfleet.imaging.profiles import to_srgb


def asset_image(asset_id: uuid.UUID, data: bytes, limits: ImageLimits) -> Image.Image:
    """An uploaded watermark image, decoded upright, in sRGB, with an alpha channel."""
    try:
        image, info = open_source(data, limits)
        image = decode(image, limits)
    except ImageRejected as error:
        raise ProcessingFailed(
            f"the watermark asset {asset_id} cannot be used: {error.detail}"
        ) from None
    icc = image.info.get("icc_profile")
    if isinstance(icc, bytes) and icc:
        image = to_srgb(image, icc)
    return to_working_mode(orient(image, info.orientation), alpha=True)
