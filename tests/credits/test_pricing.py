"""The pricing function: every operation and format priced, the documented examples hold."""

from __future__ import annotations

import pytest

from pixelfleet.credits.pricing import OPERATION_PRICES, OUTPUT_FORMAT_PRICES, price_task
from pixelfleet.imaging.codecs import OUTPUT_FORMATS
from pixelfleet.imaging.operations import OPERATIONS


def test_every_catalogue_operation_and_output_format_has_a_price() -> None:
    assert set(OPERATION_PRICES) == set(OPERATIONS)
    assert set(OUTPUT_FORMAT_PRICES) == set(OUTPUT_FORMATS)


@pytest.mark.parametrize(
    ("operations", "output_format", "pixels", "cost"),
    [
        (["resize"], "webp", 4000 * 3000, 4),  # the docstring's 12 MP example
        (["grayscale"], "jpeg", 2_000_000, 2),  # the docstring's 2 MP example
        ([], "png", 1, 1),
        (["auto_orient"], "jpeg", 1, 1),
        (["resize", "crop", "rotate"], "avif", 10_000_000, 6),
        ([], "jpeg", 10_000_001, 2),
        ([], "jpeg", 45_000_000, 5),
    ],
)
def test_the_price_of_a_task(
    operations: list[str], output_format: str, pixels: int, cost: int
) -> None:
    assert price_task(operations, output_format, pixels) == cost
