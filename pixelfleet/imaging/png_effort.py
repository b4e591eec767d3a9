"""How zlib compresses a PNG: chosen per image from a few bands of its rows.

With zlib-ng (which Pillow's wheels carry), level 4 writes a photo two to three times faster
than the default level 6, for 3-8% more bytes; zlib's run-length strategy (Z_RLE) is faster
still, and on smooth or noisy photographs as small as level 6, but it can more than double a
screenshot or a drawing. Level 6 itself is worth its time only on flat, few-colour images of
one or two bytes a pixel (greys, palettes), where level 4 can double the file and level 6
costs no more time (long repeats end its search for matches early).

Trying the candidates on three thin bands of rows tells these apart for a few percent of the
time of the encode.
"""

from __future__ import annotations

import struct
from io import BytesIO

from PIL import Image

QUICK_LEVEL = 4
THOROUGH_LEVEL = 6
Z_RLE = 3
"""zlib's run-length strategy, as Pillow's `compress_type`."""

SMALL_PIXELS = 256 * 256
"""Images up to this size are written at the thorough level: it costs next to nothing."""

SAMPLE_FRACTION = 128
MIN_SAMPLE_ROWS = 8
"""Each of the three bands tried (a quarter, half and three quarters down) holds 1/128 of
the rows, and at least 8."""

PHOTO_RATIO = 0.15
"""Bands the quick level leaves above this fraction of their raw size are photographic: the
thorough level is slow there and gains little, so it is not even tried."""

FLAT_GAIN = 0.88
"""The thorough level is chosen when it makes the bands at most this fraction of the quick
level's size (photographs measure 0.92 and up; flat greys and palettes 0.6 to 0.85)."""

PngOptions = dict[str, int]


def _bands(image: Image.Image) -> list[Image.Image]:
    rows = min(image.height, max(MIN_SAMPLE_ROWS, image.height // SAMPLE_FRACTION))
    tops = {min(image.height - rows, image.height * k // 4) for k in (1, 2, 3)}
    return [image.crop((0, top, image.width, top + rows)) for top in sorted(tops)]


def _compressed_bytes(bands: list[Image.Image], options: PngOptions) -> int:
    """The size of the bands' PNG pixel data (IDAT chunks) with these options."""
    total = 0
    for band in bands:
        buffer = BytesIO()
        band.save(buffer, "PNG", **options)
        png = buffer.getvalue()
        position = 8  # after the signature
        while position < len(png):
            (length,) = struct.unpack(">I", png[position : position + 4])
            if png[position + 4 : position + 8] == b"IDAT":
                total += length
            position += 12 + length
    return total


def png_options(image: Image.Image) -> PngOptions:
    """The zlib options (Pillow's `compress_level`, `compress_type`) to write this image with."""
    thorough: PngOptions = {"compress_level": THOROUGH_LEVEL}
    if image.width * image.height <= SMALL_PIXELS:
        return thorough
    bands = _bands(image)
    quick: PngOptions = {"compress_level": QUICK_LEVEL}
    quick_bytes = _compressed_bytes(bands, quick)
    raw = sum(band.width * band.height for band in bands) * len(image.getbands())
    compressible = quick_bytes <= PHOTO_RATIO * raw
    if compressible and _compressed_bytes(bands, thorough) <= FLAT_GAIN * quick_bytes:
        return thorough
    run_length: PngOptions = {"compress_level": QUICK_LEVEL, "compress_type": Z_RLE}
    return run_length if _compressed_bytes(bands, run_length) <= quick_bytes else quick
