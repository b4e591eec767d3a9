"""An upload's image alone: the bytes its container holds, without what was appended after it.

Where the format says exactly where the image ends (JPEG's end-of-image marker, PNG's IEND
chunk, GIF's trailer, the RIFF size of a WebP), the image is kept byte for byte up to there:
nothing is decoded or re-encoded, so nothing can be lost. Elsewhere (AVIF, TIFF, BMP, or a file
whose end cannot be found), its first picture is decoded and written again losslessly: as PNG
when PNG holds its pixels exactly, else as deflate-compressed TIFF (CMYK, 32-bit and float
samples), with its colour profile and EXIF (and so its orientation).

A camera JPEG carrying extra pictures (MPO) keeps its first picture, as a plain JPEG: the others
lie after its end, and the index that points at them (the APP2 `MPF` segment) goes with them."""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Any

from pixelfleet.imaging.codecs import DECODER_ERRORS, SourceInfo, exif_bytes, open_source, sniff
from pixelfleet.imaging.errors import UnsupportedImage
from pixelfleet.imaging.gif_layout import gif_layout
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.source_formats import SourceFormat

# Modes PNG stores sample for sample (and Pillow reads back the same).
_PNG_EXACT_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I;16B"})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn carry no length


def _jpeg_extent(data: bytes) -> tuple[int, tuple[int, int] | None] | None:
    """The end of the first image (after its EOI marker), and the span of its MPF segment if
    it has one; None when the markers do not lead to an end."""
    if not data.startswith(b"\xff\xd8"):
        return None
    position, mpf = 2, None
    while position + 1 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == 0xD9:
            return position + 2, mpf
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if position + 4 > len(data):
            return None
        (length,) = struct.unpack_from(">H", data, position + 2)
        end = position + 2 + length
        if length < 2 or end > len(data):
            return None
        if marker == 0xE2 and data[position + 4 : position + 8] == b"MPF\0":
            mpf = (position, end)
        position = end
        if marker == 0xDA:  # entropy-coded data follows, up to the next real marker
            while True:
                position = data.find(b"\xff", position)
                if position < 0 or position + 1 >= len(data):
                    return None
                following = data[position + 1]
                if following == 0 or 0xD0 <= following <= 0xD7:
                    position += 2  # a stuffed 0xFF, or a restart marker inside the scan
                elif following == 0xFF:
                    position += 1
                else:
                    break
    return None


def _png_end(data: bytes) -> int | None:
    if not data.startswith(_PNG_SIGNATURE):
        return None
    position = len(_PNG_SIGNATURE)
    while position + 12 <= len(data):
        length: int = struct.unpack_from(">I", data, position)[0]
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            return None
        if kind == b"IEND":
            return end
        position = end
    return None


def _gif_end(data: bytes) -> int | None:
    layout = gif_layout(data)
    return None if layout is None else layout.end


def _webp_end(data: bytes) -> int | None:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    (size,) = struct.unpack_from("<I", data, 4)
    end = 8 + size + (size & 1)  # RIFF pads an odd size to even
    return end if 12 <= end <= len(data) else None


def image_end(data: bytes, source_format: SourceFormat) -> int | None:
    """Where the image ends, as its own container says; None when the format does not say
    (or the file does not follow it)."""
    match source_format:
        case "jpeg":
            extent = _jpeg_extent(data)
            return None if extent is None else extent[0]
        case "png":
            return _png_end(data)
        case "gif":
            return _gif_end(data)
        case "webp":
            return _webp_end(data)
        case _:
            return None


def _cut(data: bytes, source_format: SourceFormat) -> bytes | None:
    if source_format == "jpeg":
        extent = _jpeg_extent(data)
        if extent is None:
            return None
        first_end, mpf = extent
        if mpf is None:
            return data[:first_end]
        return data[: mpf[0]] + data[mpf[1] : first_end]
    end = image_end(data, source_format)
    return None if end is None else data[:end]


def _rewritten(data: bytes, limits: ImageLimits) -> bytes:
    """The first picture, decoded and written again losslessly."""
    image, _ = open_source(data, limits)
    with image:
        try:
            image.load()
        except DECODER_ERRORS as error:
            raise UnsupportedImage(f"the image data could not be decoded: {error}") from None
        params: dict[str, Any] = {}
        icc = image.info.get("icc_profile")
        if isinstance(icc, bytes) and icc:
            params["icc_profile"] = icc
        exif = exif_bytes(image)
        if exif is not None:
            params["exif"] = exif
        out = BytesIO()
        if image.mode in _PNG_EXACT_MODES:
            image.save(out, "PNG", **params)
        else:
            image.save(out, "TIFF", compression="tiff_adobe_deflate", **params)
    return out.getvalue()


def image_alone(data: bytes, limits: ImageLimits) -> tuple[bytes, SourceInfo]:
    """The upload without anything after its image's end, and what that is (sniffed again).

    Refuses what `sniff` refuses, and (415) a file whose end cannot be found and whose pixels
    cannot be decoded."""
    alone = _cut(data, sniff(data, limits).format)
    if alone is None:
        alone = _rewritten(data, limits)
    return alone, sniff(alone, limits)
