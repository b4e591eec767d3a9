"""The catalogue users read before building a pipeline: operations, parameters, prices."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pixelfleet.credits.pricing import (
    BASE_TASK_PRICE,
    MEGAPIXELS_PER_CREDIT,
    OUTPUT_FORMAT_PRICES,
    SIZE_TARGET_PRICE,
    format_prices,
    operation_price,
    output_format_price,
)
from pixelfleet.imaging.formats import AUTO
from pixelfleet.imaging.operations import OPERATIONS
from pixelfleet.imaging.spec import OutputSpec


class OperationOut(BaseModel):
    name: str
    description: str
    price: int
    parameters: dict[str, Any]


class OutputFormatOut(BaseModel):
    format: str
    price: int = Field(description="What the format adds to an output.")
    outputs: int = Field(
        default=1,
        description="How many outputs it is priced as: each counts the output's operations "
        "(3 for `auto`: AVIF, WebP and JPEG or PNG).",
    )


class Catalogue(BaseModel):
    base_price: int
    megapixels_per_extra_credit: int
    size_target_price: int
    operations: list[OperationOut]
    output_formats: list[OutputFormatOut]
    output_parameters: dict[str, Any]


def catalogue() -> Catalogue:
    return Catalogue(
        base_price=BASE_TASK_PRICE,
        megapixels_per_extra_credit=MEGAPIXELS_PER_CREDIT,
        operations=[
            OperationOut(
                name=name,
                description=spec.description,
                price=operation_price(name),
                parameters=spec.params.model_json_schema(),
            )
            for name, spec in OPERATIONS.items()
        ],
        output_formats=[
            OutputFormatOut(
                format=name, price=output_format_price(name), outputs=len(format_prices(name))
            )
            for name in [*OUTPUT_FORMAT_PRICES, AUTO]
        ],
        size_target_price=SIZE_TARGET_PRICE,
        output_parameters=OutputSpec.model_json_schema(),
    )
