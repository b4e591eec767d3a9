"""A pipeline: operations and an output spec, validated up front, then run on bytes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PIL import ExifTags, Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from pixelfleet.errors import FieldError
from pixelfleet.imaging.codecs import (
    DECODER_ERRORS,
    EncodedImage,
    OutputFormatName,
    SourceInfo,
    encode,
    exif_bytes,
    open_source,
)
from pixelfleet.imaging.errors import PipelineInvalid, ProcessingFailed, TooManyPixels
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations import (
    OPERATIONS,
    AutoOrientParams,
    CropParams,
    Operation,
    ResizeParams,
    ThumbnailParams,
    resize,
    thumbnail,
)
from pixelfleet.imaging.operations.auto_orient import (
    TRANSPOSING_ORIENTATIONS,
    orient,
    oriented_size,
)

ProgressReport = Callable[[str, int], None]
"""Called as `report(stage, percent)`; stages: decoding, op:<name>, encoding."""

DECODING_PERCENT = 10
OPERATIONS_END_PERCENT = 85
ENCODING_PERCENT = 90


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: OutputFormatName | None = Field(
        default=None,
        description="Output format; by default the source's if it is one of these, else png.",
    )
    quality: int = Field(default=80, ge=1, le=100, description="Quality of lossy formats.")
    strip_metadata: bool = Field(
        default=True,
        description="Drop EXIF, XMP, comments and ICC; when false, keep the ICC profile and EXIF.",
    )


class Pipeline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operations: list[Operation] = Field(default_factory=list)
    output: OutputSpec = Field(default_factory=OutputSpec)
    auto_orient: bool = Field(
        default=True,
        description=(
            "Turn the image upright from its EXIF orientation before the first operation, "
            "unless the operations contain an explicit auto_orient."
        ),
    )

    @property
    def orients_first(self) -> bool:
        """Whether the orientation is applied before any operation."""
        if self.operations and isinstance(self.operations[0], AutoOrientParams):
            return True
        return self.auto_orient and not any(
            isinstance(op, AutoOrientParams) for op in self.operations
        )


# ---------------------------------------------------------------------------- parsing


def _field_path(error: ErrorDetails) -> str:
    loc = list(error["loc"])
    # Pydantic names the union member it tried (`operations.0.resize.width`); users
    # never wrote that segment, so drop it.
    names_member = len(loc) >= 3 and loc[0] == "operations" and isinstance(loc[1], int)
    if names_member and loc[2] in OPERATIONS:
        del loc[2]
    if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        loc.append("op")
    return ".".join(["pipeline", *(str(part) for part in loc)])


def _limit_errors(pipeline: Pipeline, limits: ImageLimits) -> list[FieldError]:
    errors: list[FieldError] = []
    if len(pipeline.operations) > limits.max_operations:
        errors.append(
            FieldError(
                "pipeline.operations",
                f"at most {limits.max_operations} operations are allowed, "
                f"got {len(pipeline.operations)}",
            )
        )
    for index, op in enumerate(pipeline.operations):
        if not isinstance(op, ResizeParams | ThumbnailParams | CropParams):
            continue
        for side in ("width", "height"):
            value = getattr(op, side)
            if value is not None and value > limits.max_output_side:
                errors.append(
                    FieldError(
                        f"pipeline.operations.{index}.{side}",
                        f"must be at most {limits.max_output_side} pixels",
                    )
                )
    return errors


def parse_pipeline(raw: str | bytes | Mapping[str, Any], limits: ImageLimits) -> Pipeline:
    """Validate a pipeline (JSON text or a decoded mapping) against the schema and limits.

    Every problem becomes a FieldError whose path starts with `pipeline`, such as
    `pipeline.operations.0.width`; any problem raises PipelineInvalid.
    """
    try:
        if isinstance(raw, str | bytes):
            pipeline = Pipeline.model_validate_json(raw)
        else:
            pipeline = Pipeline.model_validate(raw)
    except ValidationError as error:
        field_errors = [FieldError(_field_path(detail), detail["msg"]) for detail in error.errors()]
        raise PipelineInvalid("the pipeline is invalid", errors=field_errors) from None
    limit_errors = _limit_errors(pipeline, limits)
    if limit_errors:
        raise PipelineInvalid("the pipeline exceeds the limits", errors=limit_errors)
    return pipeline


# ---------------------------------------------------------------------------- sizes


def _check_output_pixels(size: tuple[int, int], stage: str, limits: ImageLimits) -> None:
    width, height = size
    if width * height > limits.max_output_pixels:
        raise ProcessingFailed(
            f"{stage} would make a {width}x{height} image ({width * height} pixels); "
            f"the limit is {limits.max_output_pixels} pixels"
        )


def predict_output_size(
    source: SourceInfo, pipeline: Pipeline, limits: ImageLimits | None = None
) -> tuple[int, int]:
    """The output's dimensions, computed without decoding.

    With `limits`, raises ProcessingFailed if any step's result would exceed
    `max_output_pixels`; also raises it for a crop that falls outside the image.
    (A JPEG decoded at reduced size may land one pixel off on the free side.)
    """
    size = (source.width, source.height)
    oriented = False
    if pipeline.orients_first:
        size = oriented_size(size, source.orientation)
        oriented = True
    for index, op in enumerate(pipeline.operations):
        if isinstance(op, AutoOrientParams):
            if not oriented:
                size = oriented_size(size, source.orientation)
                oriented = True
            continue
        size = OPERATIONS[op.op].output_size(size, op)
        if limits is not None:
            _check_output_pixels(size, f"operation {index} ({op.op})", limits)
    return size


def _draft_request(source: SourceInfo, pipeline: Pipeline) -> tuple[int, int] | None:
    """The size to ask a JPEG decoder for when the first operation shrinks the image."""
    first = next((op for op in pipeline.operations if not isinstance(op, AutoOrientParams)), None)
    if not isinstance(first, ResizeParams | ThumbnailParams):
        return None
    transposed = pipeline.orients_first and source.orientation in TRANSPOSING_ORIENTATIONS
    size = (source.height, source.width) if transposed else (source.width, source.height)
    if isinstance(first, ResizeParams):
        needed = resize.resampled_size(size, first)
    else:
        needed = thumbnail.output_size(size, first)
    # Twice the target, as Image.thumbnail does: the final resample then stays sharp.
    request = (needed[0] * 2, needed[1] * 2)
    if request[0] >= size[0] and request[1] >= size[1]:
        return None
    return (request[1], request[0]) if transposed else request


# ---------------------------------------------------------------------------- running


def _decode(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise TooManyPixels(f"the image has too many pixels: {error}") from None
    except DECODER_ERRORS as error:
        raise ProcessingFailed(f"the image data is corrupt or truncated: {error}") from None
    return image


def _exif_without_orientation(exif: bytes) -> bytes:
    parsed = Image.Exif()
    parsed.load(exif)
    parsed.pop(ExifTags.Base.Orientation, None)
    return parsed.tobytes()


def _percent_for_operation(index: int, count: int) -> int:
    span = OPERATIONS_END_PERCENT - DECODING_PERCENT
    return DECODING_PERCENT + span * (index + 1) // (count + 1)


def run_pipeline(
    data: bytes,
    pipeline: Pipeline,
    limits: ImageLimits,
    report: ProgressReport | None = None,
) -> EncodedImage:
    """Decode the upload once, apply the operations in order and encode the result.

    Animated sources contribute their first frame. Synchronous and pure: bytes in,
    bytes out. Raises the ImageRejected family only (never a bare Pillow error).
    """

    def progress(stage: str, percent: int) -> None:
        if report is not None:
            report(stage, percent)

    progress("decoding", DECODING_PERCENT)
    image, source = open_source(data, limits)
    request = _draft_request(source, pipeline)
    if request is not None and image.format in {"JPEG", "MPO"}:
        image.draft(None, request)
    image = _decode(image)
    source_format = image.format

    icc_profile = image.info.get("icc_profile")
    exif = exif_bytes(image)
    oriented = False

    def turn_upright(image: Image.Image) -> Image.Image:
        nonlocal exif, oriented
        oriented = True
        if source.orientation == 1:
            return image
        if exif is not None:
            exif = _exif_without_orientation(exif)
        return orient(image, source.orientation)

    if pipeline.orients_first:
        image = turn_upright(image)

    count = len(pipeline.operations)
    for index, op in enumerate(pipeline.operations):
        progress(f"op:{op.op}", _percent_for_operation(index, count))
        if isinstance(op, AutoOrientParams):
            if not oriented:
                image = turn_upright(image)
            continue
        spec = OPERATIONS[op.op]
        stage = f"operation {index} ({op.op})"
        _check_output_pixels(spec.output_size(image.size, op), stage, limits)
        try:
            image = spec.apply(image, op)
        except Image.DecompressionBombError as error:
            raise TooManyPixels(f"{stage} made too large an image: {error}") from None
        except (OSError, ValueError) as error:
            raise ProcessingFailed(f"{stage} failed: {error}") from None
    _check_output_pixels(image.size, "the pipeline", limits)

    progress("encoding", ENCODING_PERCENT)
    # What to keep is decided from the source, not from whatever info the last step
    # happened to carry along.
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    if icc_profile is not None:
        image.info["icc_profile"] = icc_profile
    if exif is not None:
        image.info["exif"] = exif
    return encode(image, pipeline.output, source_format=source_format)
