"""Reading what an upload is (from its header only) and writing results in output formats."""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any, Literal

from PIL import ExifTags, Image, UnidentifiedImageError

from pixelfleet.imaging.colours import has_alpha, is_grey, to_working_mode
from pixelfleet.imaging.errors import (
    ImageTooLarge,
    ProcessingFailed,
    TooManyPixels,
    UnsupportedImage,
)
from pixelfleet.imaging.limits import ImageLimits

if TYPE_CHECKING:
    from pixelfleet.imaging.pipeline import OutputSpec

SourceFormat = Literal["jpeg", "png", "webp", "gif", "avif", "tiff", "bmp"]
OutputFormatName = Literal["jpeg", "png", "webp", "avif"]

# Pillow's format names for what we accept. MPO is how Pillow reports a camera JPEG
# carrying extra pictures; it is still a JPEG to everyone else.
_PIL_TO_SOURCE: dict[str, SourceFormat] = {
    "JPEG": "jpeg",
    "MPO": "jpeg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "AVIF": "avif",
    "TIFF": "tiff",
    "BMP": "bmp",
}
_OPENERS = ("JPEG", "PNG", "WEBP", "GIF", "AVIF", "TIFF", "BMP")

SOURCE_CONTENT_TYPES: dict[SourceFormat, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "avif": "image/avif",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
}

# Hostile or damaged files make Pillow's plugins raise many kinds of exception.
DECODER_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    TypeError,
    KeyError,
    ZeroDivisionError,
)


@dataclass(frozen=True)
class SourceInfo:
    """What an upload is, read from its header."""

    format: SourceFormat
    width: int
    height: int
    frames: int
    bytes: int
    content_type: str
    orientation: int = 1
    """The EXIF orientation (1 to 8; 1 when absent)."""

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class OutputFormat:
    name: OutputFormatName
    pil_format: str
    content_type: str
    extension: str
    lossy: bool


OUTPUT_FORMATS: dict[OutputFormatName, OutputFormat] = {
    "jpeg": OutputFormat("jpeg", "JPEG", "image/jpeg", "jpg", lossy=True),
    "png": OutputFormat("png", "PNG", "image/png", "png", lossy=False),
    "webp": OutputFormat("webp", "WEBP", "image/webp", "webp", lossy=True),
    "avif": OutputFormat("avif", "AVIF", "image/avif", "avif", lossy=True),
}

# Fast enough for interactive use; libavif's default (6) is several times slower.
AVIF_SPEED = 8


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    format: OutputFormatName
    content_type: str
    width: int
    height: int


def _header_orientation(image: Image.Image) -> int:
    # PNG's getexif() decodes the whole image when no eXIf chunk came before the pixels.
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    value = image.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def open_source(data: bytes, limits: ImageLimits) -> tuple[Image.Image, SourceInfo]:
    """Open an upload lazily (header only, no pixels decoded) and enforce the limits."""
    if len(data) > limits.max_upload_bytes:
        raise ImageTooLarge(
            f"the upload has {len(data)} bytes; the limit is {limits.max_upload_bytes}"
        )
    try:
        # Our own pixel limit below is the one that counts: Pillow's warning (set by its
        # global MAX_IMAGE_PIXELS) is silenced here; only its hard error can fire first.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(BytesIO(data), formats=_OPENERS)
            source_format = _PIL_TO_SOURCE[image.format or ""]
            width, height = image.size
            _check_pixels(width, height, limits)
            frames = int(getattr(image, "n_frames", 1))
            # A GIF frame may reach past the logical screen and grow the image.
            width, height = image.size
            _check_pixels(width, height, limits)
            orientation = _header_orientation(image)
    except Image.DecompressionBombError as error:
        raise TooManyPixels(f"the image has too many pixels: {error}") from None
    except UnidentifiedImageError:
        raise UnsupportedImage(
            "the upload is not an image in an accepted format "
            f"({', '.join(sorted(SOURCE_CONTENT_TYPES))})"
        ) from None
    except DECODER_ERRORS as error:
        raise UnsupportedImage(f"the image header could not be read: {error}") from None
    if width < 1 or height < 1:
        raise UnsupportedImage(f"the image claims an empty size of {width}x{height}")
    info = SourceInfo(
        format=source_format,
        width=width,
        height=height,
        frames=max(frames, 1),
        bytes=len(data),
        content_type=SOURCE_CONTENT_TYPES[source_format],
        orientation=orientation,
    )
    return image, info


def _check_pixels(width: int, height: int, limits: ImageLimits) -> None:
    if width * height > limits.max_source_pixels:
        raise TooManyPixels(
            f"the image is {width}x{height} ({width * height} pixels); "
            f"the limit is {limits.max_source_pixels} pixels"
        )


def sniff(data: bytes, limits: ImageLimits) -> SourceInfo:
    """What the upload is, from its header alone; refuses what we will not process.

    Raises ImageTooLarge (bytes), UnsupportedImage (not an accepted image) or
    TooManyPixels (declared size), all without decoding pixels.
    """
    image, info = open_source(data, limits)
    image.close()
    return info


def output_format_for(
    requested: OutputFormatName | None, source_format: str | None
) -> OutputFormat:
    """The requested format, else the source's if we can write it, else PNG."""
    if requested is not None:
        return OUTPUT_FORMATS[requested]
    for name, output in OUTPUT_FORMATS.items():
        if source_format is not None and source_format.lower() in (name, output.pil_format.lower()):
            return output
    if source_format is not None and source_format.upper() == "MPO":
        return OUTPUT_FORMATS["jpeg"]
    return OUTPUT_FORMATS["png"]


def _flatten_onto_white(image: Image.Image) -> Image.Image:
    rgba = to_working_mode(image, alpha=True).convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _for_format(image: Image.Image, output: OutputFormat) -> Image.Image:
    """The image in a mode the format can store, transparency held in an alpha channel."""
    if output.name == "jpeg":
        if has_alpha(image):
            flat = _flatten_onto_white(image)
            return flat.convert("L") if is_grey(image) else flat
        return to_working_mode(image)
    if output.name == "png":
        if image.mode == "P" and not has_alpha(image):
            return image
        if image.mode in {"1", "I;16"} and "transparency" not in image.info:
            return image
        return to_working_mode(image)
    # WebP and AVIF store colour only.
    return to_working_mode(image).convert("RGBA" if has_alpha(image) else "RGB")


_ICC_SPACES = {"L": b"GRAY", "LA": b"GRAY", "RGB": b"RGB ", "RGBA": b"RGB ", "P": b"RGB "}


def _matching_icc(image: Image.Image, icc_profile: object) -> bytes | None:
    """The profile if it describes the image's colour space (bytes 16-20 of the header)."""
    if not isinstance(icc_profile, bytes) or len(icc_profile) < 20:
        return None
    if icc_profile[16:20] != _ICC_SPACES.get(image.mode):
        return None
    return icc_profile


def exif_bytes(image: Image.Image) -> bytes | None:
    """The image's EXIF block as stored, or None."""
    raw = image.info.get("exif")
    if isinstance(raw, bytes) and raw:
        return raw
    if image.format == "TIFF":
        exif = image.getexif()
        return exif.tobytes() if len(exif) else None
    return None


@contextmanager
def _without_info(image: Image.Image) -> Iterator[None]:
    # Several Pillow encoders copy ICC, XMP, comments or EXIF from `image.info` unasked;
    # hiding it for the save keeps only what we pass explicitly.
    saved = image.info
    image.info = {}
    try:
        yield
    finally:
        image.info = saved


def encode(
    image: Image.Image, spec: OutputSpec, *, source_format: str | None = None
) -> EncodedImage:
    """Write the image in the spec's format, without metadata unless asked to keep it.

    With `spec.format` None the format is the source's (`source_format`, else
    `image.format`) when it is an output format, else PNG. Keeping metadata keeps the
    ICC profile (when it matches the colour space) and EXIF from `image.info`.
    """
    output = output_format_for(spec.format, source_format or image.format)
    prepared = _for_format(image, output)
    params: dict[str, Any] = {}
    if output.lossy:
        params["quality"] = spec.quality
    if output.name == "avif":
        params["speed"] = AVIF_SPEED
    if not spec.strip_metadata:
        icc = _matching_icc(prepared, image.info.get("icc_profile"))
        if icc is not None:
            params["icc_profile"] = icc
        exif = exif_bytes(image)
        if exif is not None:
            params["exif"] = exif
    buffer = BytesIO()
    try:
        with _without_info(prepared):
            prepared.save(buffer, output.pil_format, **params)
    except (OSError, ValueError) as error:
        raise ProcessingFailed(
            f"the image could not be encoded as {output.name}: {error}"
        ) from None
    return EncodedImage(
        data=buffer.getvalue(),
        format=output.name,
        content_type=output.content_type,
        width=prepared.width,
        height=prepared.height,
    )
