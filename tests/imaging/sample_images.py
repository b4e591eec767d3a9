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
from PIL import Image, ImageCms, ImageDraw

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


def photo(width: int, height: int, *, seed: int = 7) -> Image.Image:
    """Photo-like: smooth lighting, a scatter of soft-edged shapes and mild sensor noise.

    Drawn at a quarter of the size and enlarged, which softens every edge as a lens would.
    """
    rng = np.random.default_rng(seed)
    small_w, small_h = max(1, width // 4), max(1, height // 4)
    xs = np.linspace(0, 1, small_w, dtype=np.float32)[None, :]
    ys = np.linspace(0, 1, small_h, dtype=np.float32)[:, None]
    red = 60 + 150 * xs + 30 * np.sin(ys * 6)
    green = 80 + 100 * ys + 40 * np.cos(xs * 5)
    blue = 140 - 60 * xs * ys
    planes = np.broadcast_arrays(red, green, blue)
    small = Image.fromarray(np.stack(planes, axis=-1).clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(small)
    for _ in range(60):
        x, y = rng.uniform(0, small_w), rng.uniform(0, small_h)
        side = rng.uniform(small_w / 40, small_w / 6)
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            draw.ellipse((x, y, x + side, y + side * 0.7), fill=colour)
        else:
            draw.rectangle((x, y, x + side * 0.8, y + side), fill=colour)
    pixels = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    noise = rng.integers(-6, 7, pixels.shape, dtype=np.int16)
    return Image.fromarray((pixels + noise).clip(0, 255).astype(np.uint8), "RGB")


def swapped_primaries_profile() -> bytes:
    """An sRGB ICC profile with its red and blue colorants swapped.

    Pixels described by it, converted to sRGB, come out with red and blue exchanged:
    a reference for colour management that needs no other colour code.
    """
    srgb: bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    profile = bytearray(srgb)
    (count,) = struct.unpack(">I", profile[128:132])
    entries = {}
    for index in range(count):
        at = 132 + 12 * index
        signature, offset, size = struct.unpack(">4sII", profile[at : at + 12])
        entries[signature] = (at, offset, size)
    red_at, red_offset, red_size = entries[b"rXYZ"]
    blue_at, blue_offset, blue_size = entries[b"bXYZ"]
    struct.pack_into(">4sII", profile, red_at, b"rXYZ", blue_offset, blue_size)
    struct.pack_into(">4sII", profile, blue_at, b"bXYZ", red_offset, red_size)
    return bytes(profile)


def _patched_avif(width: int, height: int, brand: bytes = b"avif") -> bytes:
    data = bytearray(encoded(Image.new("RGB", (16, 16), (200, 40, 40)), "AVIF"))
    at = data.find(b"ispe")
    while at != -1:  # every image item's spatial extents (the colour one and any alpha)
        struct.pack_into(">II", data, at + 8, width, height)
        at = data.find(b"ispe", at + 4)
    if brand != b"avif":
        end = struct.unpack(">I", data[:4])[0]
        data[:end] = bytes(data[:end]).replace(b"avif", brand).replace(b"avis", brand)
    return bytes(data)


def _tiff_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded(Image.new("RGB", (16, 16)), "TIFF"))
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd : ifd + 2])
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        tag = struct.unpack("<H", data[entry : entry + 2])[0]
        if tag in (256, 257):  # ImageWidth, ImageLength, as LONGs
            struct.pack_into("<HHII", data, entry, tag, 4, 1, width if tag == 256 else height)
    return bytes(data)


def _webp_canvas_claiming(width: int, height: int) -> bytes:
    canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + canvas
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def _gif_first_descriptor(data: bytes) -> int:
    flags = data[10]
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[at] == 0x21:  # extension blocks: label, then sub-blocks until a zero length
        at += 2
        while data[at]:
            at += data[at] + 1
        at += 1
    assert data[at] == 0x2C
    return at


def header_claiming(pil_format: str, width: int, height: int) -> bytes:
    """A small real file of the format (or, for WebP, its VP8X header alone) whose header
    states `width` x `height`: what a decompression-bomb upload looks like from outside."""
    if pil_format == "PNG":
        return png_header_only(width, height)
    if pil_format == "AVIF":
        return _patched_avif(width, height)
    if pil_format == "HEIF":  # the same container with HEIC brands
        return _patched_avif(width, height, brand=b"heic")
    if pil_format == "TIFF":
        return _tiff_claiming(width, height)
    if pil_format == "WEBP":
        return _webp_canvas_claiming(width, height)
    data = bytearray(encoded(Image.new("RGB", (16, 16), (90, 30, 200)), pil_format))
    if pil_format == "JPEG":
        sof = data.index(b"\xff\xc0")
        struct.pack_into(">HH", data, sof + 5, height, width)
    elif pil_format == "GIF":
        struct.pack_into("<HH", data, 6, width, height)  # the logical screen
        struct.pack_into("<HH", data, _gif_first_descriptor(bytes(data)) + 5, width, height)
    elif pil_format == "BMP":
        struct.pack_into("<ii", data, 18, width, height)
    else:
        raise ValueError(f"no header builder for {pil_format}")
    return bytes(data)
