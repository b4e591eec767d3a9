"""The price of a task, in credits. This is the only place prices are defined.

    cost = BASE_TASK_PRICE
         + sum(OPERATION_PRICES[op] for each operation)
         + OUTPUT_FORMAT_PRICES[output format]
         + one credit for each started 10 megapixels of source beyond the first 10

Examples: a 12 MP photo resized to a 800 px WebP costs 1 + 1 + 1 + 1 = 4 credits;
a 2 MP PNG turned grayscale and saved as JPEG costs 1 + 1 + 0 = 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

BASE_TASK_PRICE = 1
MEGAPIXELS_PER_CREDIT = 10

OPERATION_PRICES: dict[str, int] = {
    "auto_orient": 0,
    "resize": 1,
    "thumbnail": 1,
    "crop": 1,
    "rotate": 1,
    "flip": 1,
    "grayscale": 1,
}

OUTPUT_FORMAT_PRICES: dict[str, int] = {"jpeg": 0, "png": 0, "webp": 1, "avif": 2}


def operation_price(name: str) -> int:
    """The price of one operation (a KeyError for an operation without one: every operation
    in the catalogue must be priced here, and a test holds the two lists together)."""
    return OPERATION_PRICES[name]


def price_task(operations: Iterable[str], output_format: str, source_pixels: int) -> int:
    megapixels = source_pixels / 1_000_000
    size_surcharge = max(0, math.ceil(megapixels / MEGAPIXELS_PER_CREDIT) - 1)
    return (
        BASE_TASK_PRICE
        + sum(operation_price(name) for name in operations)
        + OUTPUT_FORMAT_PRICES[output_format]
        + size_surcharge
    )
