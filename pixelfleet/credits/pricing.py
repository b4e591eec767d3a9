"""The price of a task, in credits. This is the only place prices are defined.

    cost = BASE_TASK_PRICE
         + the price of each shared operation (a pipeline's top-level `operations`), as many
           times as the most an animated output is counted (below; they run on every frame)
         + for each output (the single output, or each variant):
               the price of each of its operations
             + OUTPUT_FORMAT_PRICES[its format]
             + SIZE_TARGET_PRICE when it asks for `max_bytes` (several encodes)
           where an output of format `auto` counts as three outputs: AVIF, WebP and its
           fallback (JPEG or PNG), each with the output's operations, and an animated
           output as one for each started FRAMES_PER_OUTPUT frames
         + one credit for each started 10 megapixels of source beyond the first 10

Examples: a 12 MP photo resized to a 800 px WebP costs 1 + 1 + 1 + 1 = 4 credits;
a 2 MP PNG turned grayscale and saved as JPEG costs 1 + 1 + 0 = 2; the same PNG as two
variants, a 100 px WebP thumbnail and a full-size AVIF, costs 1 + (1 + 1) + (0 + 2) = 5;
that PNG resized with format `auto` costs 1 + (1 + 2) + (1 + 1) + (1 + 0) = 7; a 24-frame
GIF resized and kept animated as a GIF costs 1 + 3 x 1 + 3 x 0 = 4, as a WebP 1 + 3 x 1 +
3 x 1 = 7.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pixelfleet.imaging.formats import AUTO, AUTO_FALLBACKS, NEGOTIATED_FORMATS

BASE_TASK_PRICE = 1
MEGAPIXELS_PER_CREDIT = 10
SIZE_TARGET_PRICE = 1
FRAMES_PER_OUTPUT = 10
"""An animated output is priced as one output for each started FRAMES_PER_OUTPUT frames."""

OPERATION_PRICES: dict[str, int] = {
    "auto_orient": 0,
    "resize": 1,
    "thumbnail": 1,
    "crop": 1,
    "rotate": 1,
    "flip": 1,
    "flop": 1,
    "grayscale": 1,
    "blur": 1,
    "sharpen": 1,
    "adjust": 1,
    "pad": 1,
    "watermark": 2,
}

OUTPUT_FORMAT_PRICES: dict[str, int] = {"jpeg": 0, "png": 0, "gif": 0, "webp": 1, "avif": 2}


@dataclass(frozen=True)
class OutputCharge:
    """What one output of a task asks for, as far as its price goes."""

    format: str
    operations: Sequence[str] = field(default_factory=tuple)
    size_target: bool = False
    frames: int = 1
    """The frames it is written with (more than one: it keeps an animation)."""

    @property
    def times(self) -> int:
        """How many outputs it is priced as, for its frames."""
        return math.ceil(self.frames / FRAMES_PER_OUTPUT)


def operation_price(name: str) -> int:
    """The price of one operation (a KeyError for an operation without one: every operation
    in the catalogue must be priced here, and a test holds the two lists together)."""
    return OPERATION_PRICES[name]


def format_prices(name: str) -> list[int]:
    """The price of each encoding an output of format `name` is written in: one, or three for
    `auto` (its fallback at the dearer of JPEG and PNG, whichever it turns out to be)."""
    if name != AUTO:
        return [OUTPUT_FORMAT_PRICES[name]]
    fallback = max(OUTPUT_FORMAT_PRICES[each] for each in AUTO_FALLBACKS)
    return [*(OUTPUT_FORMAT_PRICES[each] for each in NEGOTIATED_FORMATS), fallback]


def output_format_price(name: str) -> int:
    """What the format adds to an output without operations (`auto`: its three encodings)."""
    return sum(format_prices(name))


def price_task(
    shared_operations: Iterable[str], outputs: Sequence[OutputCharge], source_pixels: int
) -> int:
    megapixels = source_pixels / 1_000_000
    size_surcharge = max(0, math.ceil(megapixels / MEGAPIXELS_PER_CREDIT) - 1)
    per_output = sum(
        output.times
        * (
            sum(operation_price(name) for name in output.operations)
            + price
            + (SIZE_TARGET_PRICE if output.size_target else 0)
        )
        for output in outputs
        for price in format_prices(output.format)
    )
    shared_times = max((output.times for output in outputs), default=1)
    return (
        BASE_TASK_PRICE
        + shared_times * sum(operation_price(name) for name in shared_operations)
        + per_output
        + size_surcharge
    )
