"""Reading what an upload is (from its header only) and writing results in output formats."""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from io import BytesIO
from typing import TYPE_CHECKING, Any

from PIL import ExifTags, Image, UnidentifiedImageError

from pixelfleet.errors import FieldError
from pixelfleet.imaging.colours import flatten_onto_white, has_alpha, is_grey, to_working_mode
from pixelfleet.imaging.errors import (
    ImageTooLarge,
    PipelineInvalid,
    ProcessingFailed,
    TooManyFrames,
    TooManyPixels,
    UnsupportedImage,
)
from pixelfleet.imaging.formats import (
    AUTO,
    NEGOTIATED_FORMATS,
    OutputFormat,
    OutputFormatName,
    fallback_format,
    output_format_for,
    unsupported_options,
)
from pixelfleet.imaging.gif_layout import gif_layout
from pixelfleet.imaging.interlaced_png import interlaced_png
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.placeholders import Placeholder
from pixelfleet.imaging.png_effort import png_options
from pixelfleet.imaging.profiles import to_srgb
from pixelfleet.imaging.source_formats import (
    OPENERS,
    PIL_TO_SOURCE,
    SOURCE_CONTENT_TYPES,
    STILL_FORMATS,
    SourceFormat,
    declared_size,
)

if TYPE_CHECKING:
    from pixelfleet.imaging.spec import OutputSpec

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
    has_alpha: bool = False
    """Whether its header declares transparency (an alpha channel or a transparent colour)."""
    canvas_pixels: int = 0
    """The pixels of the largest picture a frame is decoded to, when more than its own: a
    GIF frame may reach past the screen, and its decoder then grows the canvas (0: none)."""

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def frame_pixels(self) -> int:
        """What decoding one frame takes, in pixels."""
        return max(self.pixels, self.canvas_pixels)


# Encoder settings chosen for speed at equal quality (PNG's zlib options: see png_effort).
AVIF_SPEED = 8
"""libavif's default (6) is several times slower for a barely smaller file."""
WEBP_METHOD = 4
"""0 is fastest and largest, 6 slowest; 4 is cwebp's default balance. Below 3 libwebp skips
its rate-distortion search: three times faster, but 5-10% larger at the same quality, or
visibly worse at the same size."""
LARGE_WEBP_PIXELS = 16_000_000
LARGE_WEBP_METHOD = 2
"""A lossy WebP larger than LARGE_WEBP_PIXELS is written at LARGE_WEBP_METHOD: from method 3
libwebp keeps every coded token of the picture in memory for its second pass, which for a
detailed 40 MP photo is over 300 MB on top of the pixels (twice what the decode takes), and
four to five times the CPU, for a file at most a fifth smaller (often none)."""

MAX_BYTES_ENCODES = 7
"""How many encodes a max_bytes quality search may spend."""


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    format: OutputFormatName
    content_type: str
    width: int
    height: int
    quality: int | None = None
    """The quality the lossy encoder used (lower than asked when max_bytes required it)."""
    alternates: tuple[EncodedImage, ...] = ()
    """For `format: auto`: the same image in the formats delivery may pick instead of this
    one (AVIF, WebP), most preferred first."""
    placeholder: Placeholder | None = None
    """What a page may show while it loads, when the output asked for one."""


@dataclass(frozen=True)
class Metadata:
    """What the source carried that an output may keep."""

    icc_profile: bytes | None = None
    """The profile the pixels are in (None: they are sRGB)."""
    exif: bytes | None = None

    @classmethod
    def of(cls, image: Image.Image) -> Metadata:
        icc = image.info.get("icc_profile")
        return cls(icc if isinstance(icc, bytes) and icc else None, exif_bytes(image))


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
            f"the upload has {len(data)} bytes; {limits.describe('max_upload_bytes', 'bytes')}"
        )
    try:
        # Our own pixel limit below is the one that counts: Pillow's warning (set by its
        # global MAX_IMAGE_PIXELS) is silenced here; only its hard error can fire first.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(BytesIO(data), formats=OPENERS)
            source_format = PIL_TO_SOURCE[image.format or ""]
            width, height = image.size
            _check_pixels(width, height, limits)
            canvas_pixels = _gif_canvas_pixels(data, limits) if image.format == "GIF" else 0
            frames = 1 if image.format in STILL_FORMATS else int(getattr(image, "n_frames", 1))
            # A GIF's first frame may reach past the logical screen and grow the image.
            width, height = image.size
            _check_pixels(width, height, limits)
            orientation = _header_orientation(image)
            transparent = has_alpha(image)
    except Image.DecompressionBombError as error:
        raise TooManyPixels(
            f"the image has too many pixels ({error}); "
            f"{limits.describe('max_source_pixels', 'pixels')}"
        ) from None
    except UnidentifiedImageError:
        _refuse_declared_pixels(data, limits)
        raise UnsupportedImage(
            "the upload is not an image in an accepted format "
            f"({', '.join(sorted(SOURCE_CONTENT_TYPES))})"
        ) from None
    except DECODER_ERRORS as error:
        _refuse_declared_pixels(data, limits)
        raise UnsupportedImage(f"the image header could not be read: {error}") from None
    if width < 1 or height < 1:
        raise UnsupportedImage(f"the image claims an empty size of {width}x{height}")
    if frames > limits.max_frames:
        raise TooManyFrames(
            f"the image has {frames} frames; {limits.describe('max_frames', 'frames')}"
        )
    info = SourceInfo(
        format=source_format,
        width=width,
        height=height,
        frames=max(frames, 1),
        bytes=len(data),
        content_type=SOURCE_CONTENT_TYPES[source_format],
        orientation=orientation,
        has_alpha=transparent,
        canvas_pixels=canvas_pixels,
    )
    return image, info


def _gif_canvas_pixels(data: bytes, limits: ImageLimits) -> int:
    """The pixels of the canvas a GIF's frames reach, from its blocks (Pillow grows its canvas
    for a frame past the screen only when it decodes that frame; 0: not a GIF's blocks);
    TooManyPixels past the pixel limit."""
    layout = gif_layout(data)
    if layout is None:
        return 0
    width, height = layout.canvas
    if width * height > limits.max_source_pixels:
        raise TooManyPixels(
            f"a frame of the GIF reaches {width}x{height} ({width * height} pixels) "
            f"past its {layout.screen[0]}x{layout.screen[1]} screen; "
            f"{limits.describe('max_source_pixels', 'pixels')}"
        )
    return width * height


def _refuse_declared_pixels(data: bytes, limits: ImageLimits) -> None:
    """For an upload Pillow could not open: the pixel-limit refusal when its header states
    a size over the limit (the truth about it), rather than "not an image"."""
    size = declared_size(data)
    if size is not None and size[0] * size[1] > limits.max_source_pixels:
        raise TooManyPixels(
            f"the image header states {size[0]}x{size[1]} ({size[0] * size[1]} pixels); "
            f"{limits.describe('max_source_pixels', 'pixels')}"
        )


def _check_pixels(width: int, height: int, limits: ImageLimits) -> None:
    if width * height > limits.max_source_pixels:
        raise TooManyPixels(
            f"the image is {width}x{height} ({width * height} pixels); "
            f"{limits.describe('max_source_pixels', 'pixels')}"
        )


def decode(image: Image.Image, limits: ImageLimits) -> Image.Image:
    """The opened image's pixels decoded; the ImageRejected family for what cannot be."""
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise TooManyPixels(
            f"the image has too many pixels ({error}); "
            f"{limits.describe('max_source_pixels', 'pixels')}"
        ) from None
    except DECODER_ERRORS as error:
        raise ProcessingFailed(f"the image data is corrupt or truncated: {error}") from None
    return image


def sniff(data: bytes, limits: ImageLimits) -> SourceInfo:
    """What the upload is, from its header alone; refuses what we will not process.

    Raises ImageTooLarge (bytes), UnsupportedImage (not an accepted image),
    TooManyPixels (declared size) or TooManyFrames (animation length), all without
    decoding pixels.
    """
    image, info = open_source(data, limits)
    image.close()
    return info


# GIF keeps one fully transparent palette entry; alpha below this is transparent.
_GIF_ALPHA_THRESHOLD = 128
_GIF_TRANSPARENT_INDEX = 255


def _for_gif(image: Image.Image) -> tuple[Image.Image, dict[str, Any]]:
    """A palette image (at most 256 colours, one of them transparent if needed)."""
    if image.mode in {"L", "1"} or (image.mode == "P" and not has_alpha(image)):
        return image, {}
    working = to_working_mode(image)
    if working.mode == "L":
        return working, {}
    if not has_alpha(working):
        # Octree is several times faster than median cut for the same likeness.
        return working.quantize(256, method=Image.Quantize.FASTOCTREE), {}
    rgba = working.convert("RGBA")
    palette = rgba.convert("RGB").quantize(_GIF_TRANSPARENT_INDEX, method=Image.Quantize.FASTOCTREE)
    clear = rgba.getchannel("A").point(lambda a: 255 if a < _GIF_ALPHA_THRESHOLD else 0)
    palette.paste(_GIF_TRANSPARENT_INDEX, (0, 0, *palette.size), clear)
    return palette, {"transparency": _GIF_TRANSPARENT_INDEX}


def _for_format(image: Image.Image, output: OutputFormat) -> tuple[Image.Image, dict[str, Any]]:
    """The image in a mode the format can store, and any save options that mode needs."""
    if output.name == "jpeg":
        if has_alpha(image):
            flat = flatten_onto_white(image)
            return (flat.convert("L") if is_grey(image) else flat), {}
        return to_working_mode(image), {}
    if output.name == "png":
        if image.mode == "P" and not has_alpha(image):
            return image, {}
        if image.mode in {"1", "I;16"} and "transparency" not in image.info:
            return image, {}
        return to_working_mode(image), {}
    if output.name == "gif":
        return _for_gif(image)
    # WebP and AVIF store colour only.
    working = to_working_mode(image)
    colour = "RGBA" if has_alpha(working) else "RGB"
    return (working if working.mode == colour else working.convert(colour)), {}


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


def save_options(spec: OutputSpec, output: OutputFormat, pixels: int) -> dict[str, Any]:
    match output.name:
        case "jpeg":
            # Optimised Huffman tables save a few percent for a slower encode: only
            # worth it when a byte budget is being met.
            return {
                "quality": spec.quality,
                "optimize": spec.max_bytes is not None,
                "progressive": spec.progressive,
            }
        case "png":
            return {}  # zlib's level and strategy depend on the pixels (see `encode`)
        case "webp":
            # In lossless mode libwebp reads the quality as compression effort.
            large = pixels > LARGE_WEBP_PIXELS and not spec.lossless
            method = LARGE_WEBP_METHOD if large else WEBP_METHOD
            return {"quality": spec.quality, "method": method, "lossless": spec.lossless}
        case "avif":
            if spec.lossless:
                # Pillow's AVIF encoder always converts to YCbCr (BT.601): quality 100 with
                # full chroma is lossless apart from that conversion's rounding.
                return {"quality": 100, "subsampling": "4:4:4", "speed": AVIF_SPEED}
            return {"quality": spec.quality, "speed": AVIF_SPEED}
        case "gif":
            return {"interlace": spec.progressive, "optimize": False}


def _file_writer(
    prepared: Image.Image, output: OutputFormat, progressive: bool
) -> Callable[[dict[str, Any]], bytes]:
    def write(params: dict[str, Any]) -> bytes:
        try:
            with _without_info(prepared):
                if output.name == "png" and progressive:
                    return interlaced_png(prepared, params)
                buffer = BytesIO()
                prepared.save(buffer, output.pil_format, **params)
                return buffer.getvalue()
        except (OSError, ValueError) as error:
            raise ProcessingFailed(
                f"the image could not be encoded as {output.name}: {error}"
            ) from None

    return write


def _within_bytes(
    write: Callable[[dict[str, Any]], bytes],
    params: dict[str, Any],
    quality: int,
    max_bytes: int,
    output: OutputFormat,
) -> tuple[bytes, int]:
    """The highest quality up to `quality` whose encoding fits in `max_bytes`.

    The asked quality first (it usually fits), then a binary search below it; within
    MAX_BYTES_ENCODES the answer is the best quality seen, so it may sit a step or two
    under the true optimum. Raises ProcessingFailed when even quality 1 does not fit.
    """
    first = write({**params, "quality": quality})
    if len(first) <= max_bytes:
        return first, quality
    best: tuple[bytes, int] | None = None
    smallest = first
    low, high, encodes = 1, quality - 1, 1
    while low <= high and encodes < MAX_BYTES_ENCODES:
        middle = (low + high) // 2
        data = write({**params, "quality": middle})
        encodes += 1
        if len(data) <= max_bytes:
            best, low = (data, middle), middle + 1
        else:
            smallest, high = data, middle - 1
    if best is not None:
        return best
    if high >= 1:  # the budget ran out before quality 1 was tried
        smallest = write({**params, "quality": 1})
        if len(smallest) <= max_bytes:
            return smallest, 1
    raise ProcessingFailed(
        f"the image does not fit in max_bytes={max_bytes} as {output.name}: "
        f"even at quality 1 it takes {len(smallest)} bytes"
    )


def encode(
    image: Image.Image,
    spec: OutputSpec,
    *,
    source_format: str | None = None,
    metadata: Metadata | None = None,
) -> EncodedImage:
    """Write the image in the spec's format.

    With `spec.format` None the format is the source's (`source_format`, else
    `image.format`) when it is an output format, else PNG. `metadata` (by default read
    from `image.info`) names the ICC profile the pixels are in and the EXIF to keep:
    with `colour_profile="srgb"` the pixels are converted to sRGB and no profile is
    embedded; with "keep" the profile is embedded untouched (when it matches the colour
    space). EXIF is kept only when `strip_metadata` is false; XMP and comments never.
    One format only: `encode_output` writes the three of `auto`.
    """
    if spec.format == AUTO:
        raise ValueError("encode writes one format; encode_output writes those of auto")
    output = output_format_for(spec.format, source_format or image.format)
    problems = unsupported_options(
        output, progressive=spec.progressive, lossless=spec.lossless, max_bytes=spec.max_bytes
    )
    if problems:
        raise PipelineInvalid(
            f"the output options do not fit {output.name}",
            errors=[FieldError(f"pipeline.output.{field}", text) for field, text in problems],
        )
    metadata = metadata if metadata is not None else Metadata.of(image)
    if spec.colour_profile == "srgb" and metadata.icc_profile is not None:
        image = to_srgb(image, metadata.icc_profile)
    prepared, params = _for_format(image, output)
    if (
        output.name == "png"
        and spec.progressive
        and prepared.mode not in {"P", "L", "LA", "RGB", "RGBA"}
    ):
        prepared = to_working_mode(prepared)
    params.update(save_options(spec, output, prepared.width * prepared.height))
    if output.name == "png":
        params.update(png_options(prepared))
    return written(prepared, output, spec, metadata, params)


def written(
    prepared: Image.Image,
    output: OutputFormat,
    spec: OutputSpec,
    metadata: Metadata,
    params: dict[str, Any],
) -> EncodedImage:
    """The image (an animation's first frame, its others in `params`) written with `params`
    and the metadata the spec keeps; a lossy format with `max_bytes` at the highest quality
    that fits."""
    params = dict(params)
    if spec.colour_profile == "keep":
        icc = _matching_icc(prepared, metadata.icc_profile)
        if icc is not None:
            params["icc_profile"] = icc
    if not spec.strip_metadata and metadata.exif is not None:
        params["exif"] = metadata.exif
    write = _file_writer(prepared, output, spec.progressive)
    quality: int | None = params.get("quality") if output.lossy and not spec.lossless else None
    if spec.max_bytes is not None and quality is not None:
        data, quality = _within_bytes(write, params, quality, spec.max_bytes, output)
    else:
        data = write(params)
    return EncodedImage(
        data=data,
        format=output.name,
        content_type=output.content_type,
        width=prepared.width,
        height=prepared.height,
        quality=quality,
    )


def encode_output(
    image: Image.Image,
    spec: OutputSpec,
    *,
    source_format: str | None = None,
    metadata: Metadata | None = None,
) -> EncodedImage:
    """The output `spec` asks for (see `encode`). For `format: auto`: its fallback (JPEG, or
    PNG when the image has alpha) carrying the AVIF and WebP of the same pixels as
    `alternates`, each written with the spec's other options."""
    if spec.format != AUTO:
        return encode(image, spec, source_format=source_format, metadata=metadata)
    metadata = metadata if metadata is not None else Metadata.of(image)
    if spec.colour_profile == "srgb" and metadata.icc_profile is not None:
        image = to_srgb(image, metadata.icc_profile)  # once, for the three
        metadata = replace(metadata, icc_profile=None)

    def written(name: OutputFormatName) -> EncodedImage:
        return encode(image, spec.model_copy(update={"format": name}), metadata=metadata)

    fallback = written(fallback_format(has_alpha(image)))
    return replace(fallback, alternates=tuple(written(name) for name in NEGOTIATED_FORMATS))
