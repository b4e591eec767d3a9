"""Animated GIF and WebP: reading a source's frames with their timing, and writing an animation.

A source's frames are read whole (Pillow composes each GIF or WebP frame onto the canvas the
ones before left), so every operation sees a complete picture. They are written back whole
too: GIF with each frame replacing the last (disposal 2, so that transparency shows what is
behind the animation, not the frame before), WebP with libwebp's animation encoder, which
stores each frame as the rectangle that changed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from pixelfleet.imaging.codecs import (
    DECODER_ERRORS,
    EncodedImage,
    Metadata,
    SourceInfo,
    save_options,
    written,
)
from pixelfleet.imaging.colours import to_working_mode
from pixelfleet.imaging.errors import ProcessingFailed, TooManyPixels
from pixelfleet.imaging.formats import OUTPUT_FORMATS, OutputFormatName
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations import watermark
from pixelfleet.imaging.operations.crop import steady_corners
from pixelfleet.imaging.rendered import (
    DECODING_PERCENT,
    ENCODING_PERCENT,
    ProgressReport,
    Rendered,
    with_placeholder,
)
from pixelfleet.imaging.spec import OutputSpec

DEFAULT_FRAME_MS = 100
"""A frame's time when the source gives none."""
_GIF_DISPOSE_TO_BACKGROUND = 2


@dataclass(frozen=True)
class Timing:
    """How an animation plays: each frame's time, and how many times it loops."""

    durations: tuple[int, ...]
    """Milliseconds per frame."""
    plays: int
    """How many times it plays; 0: for ever."""


def _duration(image: Image.Image) -> int:
    value = image.info.get("duration")
    return round(value) if isinstance(value, int | float) and value >= 0 else DEFAULT_FRAME_MS


def frames_of(
    image: Image.Image, source: SourceInfo, limits: ImageLimits
) -> Iterator[tuple[Image.Image, int]]:
    """Each frame of an opened animation, decoded whole at the source's size (RGBA when it
    has transparency, else RGB), with its time in milliseconds.

    A frame that reaches past the screen is cut to it, as browsers show it (Pillow grows the
    canvas for it; the source's `canvas_pixels` bounded that before anything was decoded).
    Raises ProcessingFailed for a frame that cannot be decoded."""
    count = int(getattr(image, "n_frames", 1))
    size = (source.width, source.height)
    for index in range(count):
        try:
            image.seek(index)
            image.load()
        except Image.DecompressionBombError as error:
            raise TooManyPixels(
                f"frame {index + 1} of {count} is too large ({error}); "
                f"{limits.describe('max_source_pixels', 'pixels')}"
            ) from None
        except DECODER_ERRORS as error:
            raise ProcessingFailed(
                f"frame {index + 1} of {count} is corrupt or truncated: {error}"
            ) from None
        # Colour throughout (a first frame may be grey where later ones are not).
        frame = to_working_mode(image, alpha=source.has_alpha)
        colour = "RGBA" if source.has_alpha else "RGB"
        frame = frame.convert(colour) if frame.mode != colour else frame
        if frame.size != size:
            frame = frame.crop((0, 0, *size))
        yield (frame.copy() if frame is image else frame), _duration(image)


def plays_of(image: Image.Image) -> int:
    """How many times the opened source plays (0: for ever), from its first frame's header.

    WebP states the number of plays. A GIF states, in its NETSCAPE extension, how many
    times to play again after the first (0: for ever), and without one it plays once."""
    loop = image.info.get("loop")
    if not isinstance(loop, int):
        return 1
    if image.format == "GIF" and loop > 0:
        return loop + 1
    return loop


def _for_animation(frame: Image.Image, name: OutputFormatName) -> Image.Image:
    """The frame in a mode the format's animation writer keeps: colour for WebP; for GIF,
    grey with transparency as RGBA (Pillow's GIF writer drops the alpha of LA)."""
    working = to_working_mode(frame)
    if working.mode == "LA" or (name == "webp" and working.mode == "L"):
        return working.convert("RGBA" if working.mode == "LA" else "RGB")
    return working


def encode_animation(
    frames: list[Image.Image],
    timing: Timing,
    spec: OutputSpec,
    name: OutputFormatName,
    metadata: Metadata,
) -> EncodedImage:
    """The frames written as an animated GIF or WebP with the spec's options (`max_bytes`
    searches the quality of a lossy WebP as for a still). `metadata.icc_profile` is embedded
    with `colour_profile: keep` (WebP), and the EXIF with `strip_metadata: false`; the
    frames' pixels are as they are to be written."""
    output = OUTPUT_FORMATS[name]
    prepared = [_for_animation(frame, name) for frame in frames]
    first = prepared[0]
    if name == "gif":
        # Each frame in the first's mode, so that transparency means the same in every one.
        prepared = [
            frame if frame.mode == first.mode else frame.convert(first.mode) for frame in prepared
        ]
    for frame in prepared:
        frame.info = {}  # the source's timing, palette and loop: only what is passed counts
    params: dict[str, Any] = save_options(spec, output, first.width * first.height)
    params.update(
        save_all=True, append_images=prepared[1:], duration=list(timing.durations)
    )
    if name == "gif":
        params["disposal"] = _GIF_DISPOSE_TO_BACKGROUND
        if timing.plays != 1:  # once: no NETSCAPE extension
            params["loop"] = max(timing.plays - 1, 0)
    else:
        params["loop"] = timing.plays
    return written(first, output, spec, metadata, params)


Render = Callable[[Image.Image], Iterator[Rendered]]
"""Runs one frame through the steps: each output's pixels."""


def animations(
    image: Image.Image,
    source: SourceInfo,
    render: Render,
    formats: Mapping[str, OutputFormatName],
    limits: ImageLimits,
    report: ProgressReport | None,
    *,
    labelled: bool,
) -> dict[str, EncodedImage]:
    """Every frame of the opened source through `render`, each output's frames then written
    in its format (`formats`, by output name) with the source's timing. Smart crops hold where
    the first frame put them; each watermark is drawn once. Reports `frames` as they are done,
    then each output's encoding (`<name>:encoding` when `labelled`, as variants are)."""
    plays = plays_of(image)
    frames: dict[str, list[Image.Image]] = {}
    firsts: dict[str, Rendered] = {}
    durations: list[int] = []
    with steady_corners() as next_frame, watermark.layers_kept():
        for index, (frame, duration) in enumerate(frames_of(image, source, limits)):
            next_frame()
            durations.append(duration)
            for rendered in render(frame):
                frames.setdefault(rendered.name, []).append(rendered.image)
                firsts.setdefault(rendered.name, rendered)
            if report is not None:
                span = ENCODING_PERCENT - DECODING_PERCENT
                report("frames", DECODING_PERCENT + span * (index + 1) // source.frames)
    timing = Timing(tuple(durations), plays)
    results = {}
    for name, pictures in frames.items():
        first = firsts[name]
        if report is not None:
            report(f"{name}:encoding" if labelled else "encoding", ENCODING_PERCENT)
        encoded = encode_animation(pictures, timing, first.output, formats[name], first.metadata)
        results[name] = with_placeholder(encoded, first)
    return results
