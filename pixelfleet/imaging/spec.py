"""What a pipeline is: its operations, variants and output specs, and their validation.

One upload may make several outputs (variants). The top-level operations are a shared
prefix, run once; each variant's operations then apply to that shared result. Without
variants there is one output, named "default". Everything here is checked without the
image; what needs the source's facts is checked by `plan`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from pixelfleet.documented_schema import documented_as
from pixelfleet.errors import FieldError
from pixelfleet.imaging.errors import PipelineInvalid
from pixelfleet.imaging.formats import RequestedFormat, option_problems
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations import (
    OPERATIONS,
    AutoOrientParams,
    CropParams,
    Operation,
    PadParams,
    ResizeParams,
    ThumbnailParams,
    WatermarkParams,
)
from pixelfleet.imaging.placeholders import PlaceholderKind

DEFAULT_OUTPUT = "default"
VARIANT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: RequestedFormat | None = Field(
        default=None,
        description="Output format; by default the source's if it is one of these, else jpeg "
        "for a HEIC and png for the others. "
        "`auto`: AVIF, WebP and a JPEG (PNG when the image has alpha) of this output, priced "
        "as three outputs; its download picks one by the reader's `Accept` header.",
    )
    quality: int = Field(default=80, ge=1, le=100, description="Quality of lossy formats.")
    progressive: bool = Field(
        default=False,
        description="Progressive JPEG, interlaced PNG or GIF; refused for other formats.",
    )
    lossless: bool = Field(
        default=False, description="Lossless WebP or AVIF; refused for other formats."
    )
    max_bytes: int | None = Field(
        default=None,
        ge=1,
        description=(
            "For lossy formats: the highest quality up to `quality` whose file fits in this "
            "many bytes; the task fails if even quality 1 does not fit."
        ),
    )
    strip_metadata: bool = Field(
        default=True,
        description="Drop EXIF, XMP and comments; when false, keep EXIF (orientation reset).",
    )
    animated: bool = Field(
        default=True,
        description=(
            "For an animated GIF or WebP source written as gif or webp: keep every frame, "
            "each operation applied to each, with the frames' timing and loop (priced by "
            "frames). false: the first frame alone, as for every other format and auto."
        ),
    )
    placeholder: PlaceholderKind | None = Field(
        default=None,
        description=(
            "Also make a placeholder of the result to show while it loads: its BlurHash or "
            "ThumbHash (base64) string, given in the output's `placeholder`, with its "
            "`dominant_color`."
        ),
    )
    colour_profile: Literal["srgb", "keep"] = Field(
        default="srgb",
        description=(
            "srgb: convert the pixels from an embedded ICC profile to sRGB and embed no "
            "profile; keep: keep the pixels and embed the source's profile as it was."
        ),
    )

    @field_validator("progressive", "lossless", "max_bytes")
    @classmethod
    def _format_has_it(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.data.get("format")
        if name is None or info.field_name is None:
            return value  # checked against the source's format when it is known
        options: dict[str, Any] = {"progressive": False, "lossless": False, "max_bytes": None}
        options["lossless"] = info.data.get("lossless", False)
        options[info.field_name] = value
        for field, problem in option_problems(name, **options):
            if field == info.field_name:
                raise ValueError(problem)
        return value


class Variant(BaseModel):
    """One output of a pipeline: its own operations (after the shared ones) and format."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=VARIANT_NAME_PATTERN,
        description="Lower-case letters, digits, - and _ (at most 32); names the download.",
    )
    operations: list[Operation] = Field(
        default_factory=list, description="Applied to the result of the shared operations."
    )
    output: OutputSpec = Field(default_factory=OutputSpec)


class Pipeline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operations: list[Operation] = Field(
        default_factory=list,
        description="Applied once, in order; with variants, the prefix every variant shares.",
    )
    variants: list[Variant] = Field(
        default_factory=list,
        description="Several outputs from one upload; leave `output` unset when giving these.",
    )
    output: OutputSpec = Field(
        default_factory=OutputSpec, description="The single output's format (no variants)."
    )
    auto_orient: bool = Field(
        default=True,
        description=(
            "Turn the image upright from its EXIF orientation before the first operation, "
            "unless the shared operations contain an explicit auto_orient."
        ),
    )

    @field_validator("variants")
    @classmethod
    def _names_are_unique(cls, variants: list[Variant]) -> list[Variant]:
        seen: set[str] = set()
        for variant in variants:
            if variant.name in seen:
                raise ValueError(f"the variant name {variant.name!r} is used twice")
            seen.add(variant.name)
        return variants

    @field_validator("output")
    @classmethod
    def _unset_with_variants(cls, output: OutputSpec, info: ValidationInfo) -> OutputSpec:
        # The defaults are accepted, so a dumped pipeline validates again.
        if info.data.get("variants") and output != OutputSpec():
            raise ValueError("leave output unset when variants are given; each has its own")
        return output

    @property
    def orients_first(self) -> bool:
        """Whether the orientation is applied before any operation."""
        if self.operations and isinstance(self.operations[0], AutoOrientParams):
            return True
        return self.auto_orient and not any(
            isinstance(op, AutoOrientParams) for op in self.operations
        )

    def outputs(self) -> list[Variant]:
        """The outputs in order: the variants, or one named "default" without operations
        of its own (the shared operations make it)."""
        if self.variants:
            return list(self.variants)
        return [Variant(name=DEFAULT_OUTPUT, output=self.output)]

    def operations_for(self, output: Variant) -> list[Operation]:
        """Every operation that makes this output: the shared ones, then its own."""
        return [*self.operations, *output.operations]

    def asset_ids(self) -> set[uuid.UUID]:
        """The uploaded images that watermark operations anywhere in the pipeline use."""
        steps = [*self.operations, *(op for v in self.variants for op in v.operations)]
        return {op.asset for op in steps if isinstance(op, WatermarkParams) and op.asset}


PipelineDocument = Annotated[dict[str, Any], documented_as(Pipeline)]
"""A pipeline in a request body, kept as the JSON object it is until `parse_pipeline` reads
it (which names each wrong field `pipeline.…`, and knows the limits); documented as a
`Pipeline`."""


# ---------------------------------------------------------------------------- parsing


def _field_path(error: ErrorDetails) -> str:
    loc = list(error["loc"])
    # Pydantic names the union member it tried (`operations.0.resize.width`); users
    # never wrote that segment, so drop it, at the top level and in variants alike.
    for index in range(len(loc) - 2, 0, -1):
        names_member = loc[index - 1] == "operations" and isinstance(loc[index], int)
        if names_member and loc[index + 1] in OPERATIONS:
            del loc[index + 1]
    if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        loc.append("op")
    return ".".join(["pipeline", *(str(part) for part in loc)])


def _side_errors(ops: list[Operation], path: str, limits: ImageLimits) -> list[FieldError]:
    errors: list[FieldError] = []
    for index, op in enumerate(ops):
        if isinstance(op, ResizeParams | ThumbnailParams | CropParams):
            sides: tuple[str, ...] = ("width", "height")
        elif isinstance(op, PadParams):
            sides = ("top", "right", "bottom", "left")
        else:
            continue
        for side in sides:
            value = getattr(op, side)
            if value is not None and value > limits.max_output_side:
                errors.append(
                    FieldError(
                        f"{path}.{index}.{side}",
                        f"must be at most {limits.max_output_side} pixels (max_output_side)",
                    )
                )
    return errors


def limit_errors(pipeline: Pipeline, limits: ImageLimits) -> list[FieldError]:
    """What is wrong with the pipeline against the limits that need no image."""
    errors: list[FieldError] = []
    most = limits.max_operations
    shared = len(pipeline.operations)
    if len(pipeline.variants) > limits.max_variants:
        errors.append(
            FieldError(
                "pipeline.variants",
                f"at most {limits.max_variants} variants are allowed (max_variants), "
                f"got {len(pipeline.variants)}",
            )
        )
    if shared > most:
        errors.append(
            FieldError(
                "pipeline.operations",
                f"at most {most} operations are allowed (max_operations), got {shared}",
            )
        )
    errors += _side_errors(pipeline.operations, "pipeline.operations", limits)
    for index, variant in enumerate(pipeline.variants):
        path = f"pipeline.variants.{index}.operations"
        total = shared + len(variant.operations)
        if shared <= most < total:
            errors.append(
                FieldError(
                    path,
                    f"at most {most} operations are allowed per output (max_operations); "
                    f"with the {shared} shared ones this variant has {total}",
                )
            )
        errors += _side_errors(variant.operations, path, limits)
    return errors


def parse_pipeline(raw: str | bytes | Mapping[str, Any], limits: ImageLimits) -> Pipeline:
    """Validate a pipeline (JSON text or a decoded mapping) against the schema and limits.

    Every problem becomes a FieldError whose path starts with `pipeline`, such as
    `pipeline.operations.0.width` or `pipeline.variants.1.operations.0.width`; any
    problem raises PipelineInvalid.
    """
    try:
        if isinstance(raw, str | bytes):
            pipeline = Pipeline.model_validate_json(raw)
        else:
            pipeline = Pipeline.model_validate(raw)
    except ValidationError as error:
        field_errors = [
            FieldError.from_pydantic(_field_path(detail), detail["msg"])
            for detail in error.errors()
        ]
        raise PipelineInvalid("the pipeline is invalid", errors=field_errors) from None
    over_limits = limit_errors(pipeline, limits)
    if over_limits:
        raise PipelineInvalid("the pipeline exceeds the limits", errors=over_limits)
    return pipeline


__all__ = [
    "DEFAULT_OUTPUT",
    "OutputSpec",
    "Pipeline",
    "PipelineDocument",
    "Variant",
    "limit_errors",
    "parse_pipeline",
]
