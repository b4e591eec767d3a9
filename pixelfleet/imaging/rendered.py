"""What a run of a pipeline hands on to the writing of its outputs (each output's pixels), and
the progress it reports on the way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image

from pixelfleet.imaging.codecs import EncodedImage, Metadata
from pixelfleet.imaging.placeholders import placeholder_of
from pixelfleet.imaging.profiles import to_srgb
from pixelfleet.imaging.spec import OutputSpec

ProgressReport = Callable[[str, int], None]
"""Called as `report(stage, percent)`. Stages: decoding, op:<name>, encoding; with variants,
a variant's steps are <variant>:op:<name> and <variant>:encoding; an animation's, frames."""

DECODING_PERCENT = 10
ENCODING_PERCENT = 90
"""Where the last output's encoding is reported; every step in between is spread evenly."""


@dataclass(frozen=True)
class Rendered:
    """One output's pixels, ready to be written."""

    name: str
    output: OutputSpec
    image: Image.Image
    metadata: Metadata


def with_placeholder(encoded: EncodedImage, rendered: Rendered) -> EncodedImage:
    """The written output with the placeholder its spec asks for, made from its pixels (in
    sRGB, as a page paints the placeholder, even where the output keeps another profile)."""
    kind = rendered.output.placeholder
    if kind is None:
        return encoded
    image, icc = rendered.image, rendered.metadata.icc_profile
    seen = to_srgb(image, icc) if icc is not None else image
    return replace(encoded, placeholder=placeholder_of(seen, kind))
