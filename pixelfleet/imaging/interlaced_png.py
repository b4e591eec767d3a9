"""Interlaced (Adam7) PNG, which Pillow reads but does not write.

Each of the seven passes is a small image of its own; Pillow encodes it (choosing the row
filters), and its inflated IDAT stream, the pass's filtered scanlines, is exactly what an
interlaced file carries for that pass. The passes' streams are joined and deflated once.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from PIL import Image

_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# (first column, first row, column step, row step) of each pass.
ADAM7_PASSES = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)

# Pillow's own passes only feed our join, so they need little compression effort.
_PASS_COMPRESS_LEVEL = 1


def _chunks(png: bytes) -> Iterator[tuple[bytes, bytes]]:
    position = len(_SIGNATURE)
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        yield kind, png[position + 8 : position + 8 + length]
        position += 12 + length


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png(image: Image.Image, params: dict[str, Any]) -> bytes:
    buffer = BytesIO()
    image.save(buffer, "PNG", **params)
    return buffer.getvalue()


def pass_image(image: Image.Image, x0: int, y0: int, dx: int, dy: int) -> Image.Image | None:
    """Every dx-th pixel of every dy-th row, from (x0, y0); None when the pass is empty."""
    width = (image.width - x0 + dx - 1) // dx
    height = (image.height - y0 + dy - 1) // dy
    if width < 1 or height < 1:
        return None
    # Nearest-neighbour sampling lands on pixel centres, hence the half-step shift.
    matrix = (dx, 0, x0 - dx / 2 + 0.5, 0, dy, y0 - dy / 2 + 0.5)
    return image.transform(
        (width, height), Image.Transform.AFFINE, matrix, resample=Image.Resampling.NEAREST
    )


def interlaced_png(image: Image.Image, params: dict[str, Any]) -> bytes:
    """The image as an Adam7-interlaced PNG (modes L, LA, RGB, RGBA, P).

    `params` are Pillow's PNG save options (compress_level, icc_profile, exif); they shape
    the header chunks, which are taken from Pillow's encoding of a 1x1 corner.
    """
    header = list(_chunks(_png(image.crop((0, 0, 1, 1)), params)))
    ihdr = header[0][1]
    depth_and_type = ihdr[8:10]
    stream = bytearray()
    for x0, y0, dx, dy in ADAM7_PASSES:
        sub = pass_image(image, x0, y0, dx, dy)
        if sub is None:
            continue
        chunks = list(_chunks(_png(sub, {"compress_level": _PASS_COMPRESS_LEVEL})))
        if chunks[0][1][8:10] != depth_and_type:
            raise ValueError("an interlace pass was encoded with another bit depth")
        stream += zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    level = params.get("compress_level", 6)
    new_ihdr = struct.pack(">II", image.width, image.height) + depth_and_type + b"\0\0\1"
    parts = [_SIGNATURE, _chunk(b"IHDR", new_ihdr)]
    parts += [
        _chunk(kind, body) for kind, body in header if kind not in {b"IHDR", b"IDAT", b"IEND"}
    ]
    parts += [_chunk(b"IDAT", zlib.compress(bytes(stream), level)), _chunk(b"IEND", b"")]
    return b"".join(parts)
