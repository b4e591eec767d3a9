"""Test images drawn in code, at any size, from relative coordinates.

Drawing the same scene directly at a target size gives a reference that shares no
code with the operation under test.
"""

from __future__ import annotations

import struct
import zlib
from io import BytesIO
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

_SUPERSAMPLE = 4


def scene(width: int = 160, height: int = 120, *, alpha: bool = False) -> Image.Image:
    """A colour ramp with a dark ellipse upper left and a light block lower right.

    Nothing in it is symmetric, so flips and turns show. With `alpha`, the left
    quarter fades from transparent to opaque.
    """
    w, h = width * _SUPERSAMPLE, height * _SUPERSAMPLE
    xs = np.linspace(0, 255, w)[None, :].repeat(h, axis=0)
    ys = np.linspace(0, 255, h)[:, None].repeat(w, axis=1)
    rgb = np.stack([xs, ys, np.full((h, w), 96.0)], axis=-1).astype(np.uint8)
    big = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(big)
    draw.ellipse((0.12 * w, 0.15 * h, 0.45 * w, 0.6 * h), fill=(20, 30, 60))
    draw.rectangle((0.6 * w, 0.55 * h, 0.9 * w, 0.85 * h), fill=(240, 235, 200))
    image = big.resize((width, height), Image.Resampling.BOX)
    if alpha:
        ramp = np.clip(np.linspace(0, 4, width), 0, 1)[None, :].repeat(height, axis=0)
        image.putalpha(Image.fromarray((ramp * 255).astype(np.uint8), "L"))
    return image


def encoded(image: Image.Image, pil_format: str, **params: Any) -> bytes:
    buffer = BytesIO()
    image.save(buffer, pil_format, **params)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature, an IHDR declaring `width` x `height` RGB, and IEND: no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def as_array(image: Image.Image) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return np.asarray(image)


def reopened(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image
