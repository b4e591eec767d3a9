"""The pricing function: every operation and format priced, the documented examples hold."""

from __future__ import annotations

import pytest

from pixelfleet.credits.pricing import (
    OPERATION_PRICES,
    OUTPUT_FORMAT_PRICES,
    OutputCharge,
    price_task,
)
from pixelfleet.imaging.formats import OUTPUT_FORMATS
from pixelfleet.imaging.operations import OPERATIONS


def test_every_catalogue_operation_and_output_format_has_a_price() -> None:
    assert set(OPERATION_PRICES) == set(OPERATIONS)
    assert set(OUTPUT_FORMAT_PRICES) == set(OUTPUT_FORMATS)


@pytest.mark.parametrize(
    ("shared", "outputs", "pixels", "cost"),
    [
        (["resize"], [OutputCharge("webp")], 4000 * 3000, 4),  # the docstring's 12 MP example
        (["grayscale"], [OutputCharge("jpeg")], 2_000_000, 2),  # its 2 MP example
        (  # its variants example
            [],
            [OutputCharge("webp", ["thumbnail"]), OutputCharge("avif")],
            2_000_000,
            5,
        ),
        ([], [OutputCharge("png")], 1, 1),
        (["auto_orient"], [OutputCharge("jpeg")], 1, 1),
        (["resize", "crop", "rotate"], [OutputCharge("avif")], 10_000_000, 6),
        ([], [OutputCharge("jpeg")], 10_000_001, 2),
        ([], [OutputCharge("jpeg")], 45_000_000, 5),
        ([], [OutputCharge("jpeg", size_target=True)], 1, 2),
        (["watermark"], [OutputCharge("gif", ["blur"]), OutputCharge("gif", ["pad"])], 1, 5),
    ],
)
def test_the_price_of_a_task(
    shared: list[str], outputs: list[OutputCharge], pixels: int, cost: int
) -> None:
    assert price_task(shared, outputs, pixels) == cost
