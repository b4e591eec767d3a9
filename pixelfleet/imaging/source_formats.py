"""The source formats PixelFleet accepts, and how a file is recognised as one from its first
bytes alone (its signature, and the size its container states)."""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Literal

import imagesize
import pillow_heif
from PIL import Image

SourceFormat = Literal["jpeg", "png", "webp", "gif", "avif", "tiff", "bmp", "heic"]

# HEIC/HEIF (phones' default) through libheif's Pillow plugin. Its opener reads the container
# alone (sizes, transforms, profile) and decodes on load, like Pillow's own; the pictures
# are upright when decoded (libheif applies the file's rotation and mirroring, and the
# plugin sets the EXIF orientation to 1).
pillow_heif.register_heif_opener()

# Pillow's format names for what we accept. MPO is how Pillow reports a camera JPEG
# carrying extra pictures; it is still a JPEG to everyone else.
PIL_TO_SOURCE: dict[str, SourceFormat] = {
    "JPEG": "jpeg",
    "MPO": "jpeg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "AVIF": "avif",
    "TIFF": "tiff",
    "BMP": "bmp",
    "HEIF": "heic",
}
OPENERS = ("JPEG", "PNG", "WEBP", "GIF", "AVIF", "TIFF", "BMP", "HEIF")

SOURCE_CONTENT_TYPES: dict[SourceFormat, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "avif": "image/avif",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
    "heic": "image/heic",
}
SOURCE_CONTENT_TYPE_ALIASES: dict[str, SourceFormat] = {"image/heif": "heic"}
"""Other media types that name an accepted format: a browser calls a `.heif` file image/heif."""


def source_format_named(content_type: str) -> SourceFormat | None:
    """The accepted format a media type names (its canonical type or an alias), or None."""
    for name, canonical in SOURCE_CONTENT_TYPES.items():
        if content_type == canonical:
            return name
    return SOURCE_CONTENT_TYPE_ALIASES.get(content_type)


STILL_FORMATS = frozenset({"HEIF"})
"""Formats whose several pictures are not an animation (a HEIC's burst, stereo pair or
depth map): only the primary picture is used, and counted."""


_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def _is_avif(data: bytes) -> bool:
    """Whether the ISOBMFF `ftyp` box names an AVIF brand, major or compatible (a HEIC
    file shares the container and the `mif1` brand, but its pictures are HEVC)."""
    if data[4:8] != b"ftyp":
        return False
    (length,) = struct.unpack(">I", data[:4])
    box = data[8 : min(max(length, 8), 4096)]
    brands = [box[0:4]] + [box[at : at + 4] for at in range(8, len(box) - 3, 4)]
    return not _AVIF_BRANDS.isdisjoint(brands)


def _accepted_format_by_signature(data: bytes) -> str | None:
    """Pillow's name of the accepted format whose signature the upload starts with."""
    Image.init()
    for name in OPENERS:
        accept = Image.OPEN[name][1] if name in Image.OPEN else None
        if accept is None or accept(data[:16]) is not True:
            continue
        if name == "AVIF" and not _is_avif(data):
            continue  # a HEIC sharing the `mif1` brand: the HEIF opener below claims it
        if name == "HEIF" and _is_avif(data):
            return None  # an AVIF that Pillow's AVIF opener did not claim
        return name
    return None


def has_accepted_signature(head: bytes) -> bool:
    """Whether a file starting with `head` can be an image in an accepted format: what a fetch
    checks before it reads the rest."""
    return _accepted_format_by_signature(head) is not None


def content_type_by_signature(data: bytes) -> str | None:
    """The media type of the accepted format whose signature `data` starts with (None: none
    is): what a file claims to be, from its first bytes, without opening it."""
    name = _accepted_format_by_signature(data)
    return None if name is None else SOURCE_CONTENT_TYPES[PIL_TO_SOURCE[name]]


def declared_size(data: bytes) -> tuple[int, int] | None:
    """The dimensions the header of an upload in an accepted format states, read from the
    container without Pillow; None if it is not such an upload or states none.

    Pillow cannot report some sizes it is shown: libavif refuses to parse an AVIF whose
    `ispe` box states more than 16384x16384 pixels or a side over 32768, and libwebp makes
    no decoder for a WebP whose VP8X canvas it will not decode. Their headers still state
    the truth, which `imagesize` reads (ispe; VP8X, VP8 and VP8L; and the others'
    headers alike) from the bytes alone."""
    if _accepted_format_by_signature(data) is None:
        return None
    try:
        width, height = imagesize.get(BytesIO(data))
    except Exception:  # a best effort on hostile bytes; the caller refuses them anyway
        return None
    if width < 1 or height < 1:
        return None
    return width, height
