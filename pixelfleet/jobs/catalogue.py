"""The catalogue users read before building a pipeline: operations, parameters, prices."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pixelfleet.credits.pricing import (
    BASE_TASK_PRICE,
    FRAMES_PER_OUTPUT,
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

JsonType = Literal["string", "integer", "number", "boolean", "null", "object", "array"]


class ParameterType(BaseModel):
    """What a parameter's value may be: the JSON Schema keywords the catalogue uses. A
    keyword absent from the catalogue is absent here too (it is sent without the unset ones)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: JsonType | None = None
    title: str | None = None
    description: str | None = None
    enum: list[Any] | None = None
    const: Any = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    min_length: int | None = Field(default=None, alias="minLength")
    max_length: int | None = Field(default=None, alias="maxLength")
    pattern: str | None = None
    format: str | None = None
    properties: dict[str, ParameterSchema] | None = Field(
        default=None, description="Of an object (a focal point): its fields."
    )
    required: list[str] | None = None
    additional_properties: bool | None = Field(default=None, alias="additionalProperties")


class ParameterSchema(ParameterType):
    """The JSON Schema of one parameter: its type, or `anyOf` the types it may have."""

    default: Any = None
    any_of: list[ParameterType] | None = Field(default=None, alias="anyOf")


class ParametersSchema(BaseModel):
    """The JSON Schema (2020-12) of an operation's parameters (or an output's), as the
    pipeline's own models check them: an object of named parameters."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["object"]
    title: str
    properties: dict[str, ParameterSchema]
    required: list[str] | None = None
    additional_properties: bool = Field(alias="additionalProperties")


ParameterType.model_rebuild()


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    """The schema with each `$ref` to its `$defs` replaced by the definition itself: a
    catalogue reader sees a parameter's whole shape where it is used."""
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inlined(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inlined(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inlined(value, definitions) for value in schema]
    return schema


def parameters_of(model: type[BaseModel]) -> ParametersSchema:
    """The JSON Schema of a parameter model, typed (its definitions inlined)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    return ParametersSchema.model_validate(_inlined(schema, definitions))


class OperationOut(BaseModel):
    name: str
    description: str
    price: int
    parameters: ParametersSchema


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
    frames_per_output: int = Field(
        description="An animated output is priced as one output for each started this many "
        "frames."
    )
    operations: list[OperationOut]
    output_formats: list[OutputFormatOut]
    output_parameters: ParametersSchema


def catalogue() -> Catalogue:
    return Catalogue(
        base_price=BASE_TASK_PRICE,
        megapixels_per_extra_credit=MEGAPIXELS_PER_CREDIT,
        operations=[
            OperationOut(
                name=name,
                description=spec.description,
                price=operation_price(name),
                parameters=parameters_of(spec.params),
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
        frames_per_output=FRAMES_PER_OUTPUT,
        output_parameters=parameters_of(OutputSpec),
    )
