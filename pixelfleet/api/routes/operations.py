from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from pixelfleet.credits.pricing import (
    BASE_TASK_PRICE,
    MEGAPIXELS_PER_CREDIT,
    OUTPUT_FORMAT_PRICES,
    operation_price,
)
from pixelfleet.imaging.operations import OPERATIONS

router = APIRouter(prefix="/v1", tags=["tasks"])


class OperationOut(BaseModel):
    name: str
    description: str
    price: int
    parameters: dict[str, Any]


class OutputFormatOut(BaseModel):
    format: str
    price: int


class Catalogue(BaseModel):
    base_price: int
    megapixels_per_extra_credit: int
    operations: list[OperationOut]
    output_formats: list[OutputFormatOut]


@router.get("/operations", response_model=Catalogue)
async def operations() -> Catalogue:
    """Every operation a pipeline may use, its parameters (JSON Schema) and its price in credits."""
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
            OutputFormatOut(format=name, price=price)
            for name, price in OUTPUT_FORMAT_PRICES.items()
        ],
    )
