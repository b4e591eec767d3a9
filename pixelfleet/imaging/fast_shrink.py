"""A JPEG's first shrink by less than 4x made in NumPy, so that the large image never becomes a
Pillow image.

When every output starts by shrinking a JPEG by 1x-4x (too little for a reduced DCT decode or
an integer reduce(), see `runner`), most of the work is the full-size decode and one LANCZOS
resample of it: about 90 + 130 ms for 12 MP on one core. Here OpenCV decodes it instead
(libjpeg-turbo, as in Pillow, to the very same pixels, but 3 bytes a pixel instead of Pillow's
4), the LANCZOS kernel stretched to the scale low-passes it in place (cv2.sepFilter2D) and a
bicubic resize samples the output pixels' centres (`shrink`): about 55 + 50 ms. Pillow only
sees the result. The later, smaller resamples of a cascade are made the same way (`resample`).

The result matches Pillow's LANCZOS resample to about Pillow's own rounding: SSIM about 0.997
against it raw (Pillow's own 8-bit result scores 0.998 against exact arithmetic); encoded,
every variant is within 0.0013 SSIM of the Pillow path's on photos and fine synthetic texture.

OpenCV is imported on the first such decode (a few tens of milliseconds and about 20 MB per
process), never on other work: thumbnails, reduced decodes and other formats stay with Pillow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixelfleet.imaging.cascade import CASCADE_RATIO, Size
from pixelfleet.imaging.colours import to_working_mode
from pixelfleet.imaging.operations import resize

Pixels = NDArray[np.uint8]

MAX_SCALE = 4.0
"""Shrinks by less than this on both sides are made here; larger ones are Pillow's, after its
reduce() (reducing_gap=2.0 reduces from 4x up), which is quicker than any filter."""

_JPEG_END = b"\xff\xd9"
"""The end-of-image marker. OpenCV decodes a truncated JPEG silently (grey below the cut),
where Pillow fails: only files that end with the marker are decoded here."""


def _shrinks_here(size: Size, target: Size) -> bool:
    scales = (size[0] / target[0], size[1] / target[1])
    return target != size and all(1 <= scale < MAX_SCALE for scale in scales)


def _lanczos_taps(scale: float) -> NDArray[np.float32]:
    """Pillow's LANCZOS (a = 3) stretched by `scale`, at whole-pixel offsets, summing to 1."""
    reach = math.ceil(3 * scale)
    x = np.arange(-reach, reach + 1) / scale
    taps = np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)
    normalised: NDArray[np.float32] = (taps / taps.sum()).astype(np.float32)
    return normalised


def shrink(pixels: Pixels, size: Size, *, in_place: bool = False) -> Pixels:
    """`pixels` (H x W or H x W x C) shrunk to `size` (width, height) by 1x-4x: low-passed by
    the LANCZOS kernel stretched to the scale (what Pillow weighs each output pixel's
    neighbours by), then sampled at the output pixels' centres by bicubic interpolation,
    which passes the band the filter kept almost untouched. With `in_place`, `pixels` is
    overwritten by the filtered image (no second full-size buffer)."""
    from pixelfleet.imaging.opencv import cv2

    height, width = pixels.shape[:2]
    taps_x = _lanczos_taps(width / size[0])
    taps_y = _lanczos_taps(height / size[1])
    low = cv2.sepFilter2D(
        pixels,
        -1,
        taps_x,
        taps_y,
        dst=pixels if in_place else None,
        borderType=cv2.BORDER_REFLECT_101,
    )
    return cast(Pixels, cv2.resize(low, size, interpolation=cv2.INTER_CUBIC))


def resample(image: Image.Image, size: Size) -> Image.Image:
    """`resize.resample`, with opaque shrinks by 1x-4x made by `shrink`: for the cascade of
    resamples that follows a `decoded_shrunk` (OpenCV is loaded by then)."""
    working = to_working_mode(image)
    if working.mode not in {"L", "RGB"} or not _shrinks_here(working.size, size):
        return resize.resample(working, size)
    return Image.fromarray(shrink(np.asarray(working), size))


def root_target(source: Size, targets: Sequence[Size]) -> Size | None:
    """The one size to decode to when every target (the first resamples, stored orientation)
    is that size or comfortably smaller (so that the cascade would make it from that size
    anyway), and it is a shrink by 1x-4x; else None."""
    root = max(targets, key=lambda t: t[0] * t[1])
    for target in targets:
        if target != root and not (
            root[0] >= CASCADE_RATIO * target[0] and root[1] >= CASCADE_RATIO * target[1]
        ):
            return None
    return root if _shrinks_here(source, root) else None


def decoded_shrunk(
    image: Image.Image, data: bytes, size: Size, *, luma: bool
) -> Image.Image | None:
    """The opened (not yet decoded) JPEG `image`, whose bytes are `data`, decoded and shrunk
    to `size` (stored orientation, not turned); its luma alone with `luma`. None, with
    nothing decoded, when this way does not apply: not a plain colour or grey JPEG (CMYK
    stays with Pillow, which converts it with its profile first), no end marker (truncated:
    Pillow reports it), not a 1x-4x shrink; or when OpenCV cannot decode it, or decodes it
    to another size than Pillow reads."""
    if image.format not in {"JPEG", "MPO"} or image.mode not in {"RGB", "L"}:
        return None
    if not data.endswith(_JPEG_END) or not _shrinks_here(image.size, size):
        return None
    from pixelfleet.imaging.opencv import cv2

    grey = luma or image.mode == "L"
    flags = cv2.IMREAD_IGNORE_ORIENTATION | (
        cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR_RGB
    )
    pixels = cast(Pixels | None, cv2.imdecode(np.frombuffer(data, np.uint8), flags))
    if pixels is None or (pixels.shape[1], pixels.shape[0]) != image.size:
        return None
    return Image.fromarray(shrink(pixels, size, in_place=True))
