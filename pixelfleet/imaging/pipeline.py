"""A pipeline: operations, variants and output specs, validated up front, then run on bytes.

One upload may make several outputs (variants). The top-level operations are a shared
prefix, run once; each variant's operations then apply to that shared result. Without
variants there is one output, named "default".
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from PIL import ExifTags, Image
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from pixelfleet.errors import FieldError
from pixelfleet.imaging.cascade import ResampleCascade
from pixelfleet.imaging.codecs import (
    DECODER_ERRORS,
    OUTPUT_FORMATS,
    EncodedImage,
    Metadata,
    OutputFormatName,
    SourceInfo,
    encode,
    open_source,
    output_format_for,
    unsupported_options,
)
from pixelfleet.imaging.colours import to_working_mode
from pixelfleet.imaging.errors import (
    ImageRejected,
    PipelineInvalid,
    ProcessingFailed,
    TooManyFrames,
    TooManyPixels,
)
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations import (
    OPERATIONS,
    AutoOrientParams,
    BlurParams,
    CropParams,
    FlipParams,
    FlopParams,
    GrayscaleParams,
    Operation,
    PadParams,
    ResizeParams,
    RotateParams,
    ThumbnailParams,
    WatermarkParams,
    grayscale,
    resize,
    thumbnail,
    watermark,
)
from pixelfleet.imaging.operations.auto_orient import (
    orient,
    oriented_size,
)
from pixelfleet.imaging.profiles import to_srgb

ProgressReport = Callable[[str, int], None]
"""Called as `report(stage, percent)`. Stages: decoding, op:<name>, encoding; with variants,
a variant's steps are <variant>:op:<name> and <variant>:encoding."""

DECODING_PERCENT = 10
ENCODING_PERCENT = 90
"""Where the last output's encoding is reported; every step in between is spread evenly."""

DEFAULT_OUTPUT = "default"
VARIANT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"

DRAFT_HEADROOM = 1.25
"""A JPEG is decoded at a reduced (DCT-domain) size only down to this much above the first
resample's target: closer than that, the DCT's softer scaling shows against LANCZOS."""

_WORKING_MODES = frozenset({"L", "LA", "RGB", "RGBA"})


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: OutputFormatName | None = Field(
        default=None,
        description="Output format; by default the source's if it is one of these, else png.",
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
        for field, problem in unsupported_options(OUTPUT_FORMATS[name], **options):
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


def _limit_errors(pipeline: Pipeline, limits: ImageLimits) -> list[FieldError]:
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
    limit_errors = _limit_errors(pipeline, limits)
    if limit_errors:
        raise PipelineInvalid("the pipeline exceeds the limits", errors=limit_errors)
    return pipeline


# ---------------------------------------------------------------------------- checks


def _output_path(pipeline: Pipeline, index: int) -> str:
    return f"pipeline.variants.{index}.output" if pipeline.variants else "pipeline.output"


def _check_pipeline(pipeline: Pipeline, source: SourceInfo, limits: ImageLimits) -> None:
    """The checks that need the source: limits, and output options against its format."""
    errors = _limit_errors(pipeline, limits)
    for index, output in enumerate(pipeline.outputs()):
        spec = output.output
        problems = unsupported_options(
            output_format_for(spec.format, source.format),
            progressive=spec.progressive,
            lossless=spec.lossless,
            max_bytes=spec.max_bytes,
        )
        path = _output_path(pipeline, index)
        errors += [FieldError(f"{path}.{field}", problem) for field, problem in problems]
    if errors:
        raise PipelineInvalid("the pipeline does not fit this image or the limits", errors=errors)
    if source.pixels > limits.max_source_pixels:
        raise TooManyPixels(
            f"the image is {source.width}x{source.height} ({source.pixels} pixels); "
            f"{limits.describe('max_source_pixels', 'pixels')}"
        )
    if source.frames > limits.max_frames:
        raise TooManyFrames(
            f"the image has {source.frames} frames; {limits.describe('max_frames', 'frames')}"
        )


def _size_problem(size: tuple[int, int], limits: ImageLimits) -> str | None:
    """What is wrong with an image of `size` against the output limits, or None."""
    width, height = size
    problems = []
    if max(width, height) > limits.max_output_side:
        problems.append(limits.describe("max_output_side", "pixels per side"))
    if width * height > limits.max_output_pixels:
        problems.append(limits.describe("max_output_pixels", "pixels"))
    if not problems:
        return None
    return f"would make a {width}x{height} image ({width * height} pixels); " + "; ".join(
        problems
    )


def _check_output_size(size: tuple[int, int], stage: str, limits: ImageLimits) -> None:
    """The last guard while running (the prediction refused such pipelines already)."""
    problem = _size_problem(size, limits)
    if problem is not None:
        raise ProcessingFailed(f"{stage} {problem}")


def _stage(variant: str | None, index: int, op: Operation) -> str:
    where = f"variant {variant!r} " if variant is not None else ""
    return f"{where}operation {index} ({op.op})"


@dataclass(frozen=True)
class _Predicted:
    size: tuple[int, int]
    oriented: bool
    made: bool
    """Whether an operation made an image of `size` (else it is the source's, as decoded)."""


def _predicted(
    start: _Predicted, ops: list[Operation], path: str, source: SourceInfo, limits: ImageLimits
) -> tuple[_Predicted, FieldError | None]:
    """The size after `ops`, or the first operation whose result would exceed a limit."""
    state = start
    for index, op in enumerate(ops):
        if isinstance(op, AutoOrientParams):
            if not state.oriented:
                size = oriented_size(state.size, source.orientation)
                state = replace(state, size=size, oriented=True)
            continue
        size = OPERATIONS[op.op].output_size(state.size, op)
        problem = _size_problem(size, limits)
        if problem is not None:
            return state, FieldError(f"{path}.{index}", f"{op.op} {problem}")
        state = _Predicted(size=size, oriented=state.oriented, made=True)
    return state, None


def predict_output_sizes(
    source: SourceInfo, pipeline: Pipeline, limits: ImageLimits
) -> dict[str, tuple[int, int]]:
    """Each output's dimensions by name, computed without decoding.

    Every image a step would make, in the shared operations and in every variant, is
    checked against the output limits (`max_output_side`, `max_output_pixels`), and so
    is each output itself (a source passed through unchanged, say).

    Raises PipelineInvalid for a pipeline over the limits (operations per output,
    variants, sides, any predicted image; each error names the operation or output) or
    output options the format lacks; TooManyPixels and TooManyFrames for a source over
    its limits; ProcessingFailed when a crop falls outside.
    """
    _check_pipeline(pipeline, source, limits)
    start = _Predicted(size=(source.width, source.height), oriented=False, made=False)
    if pipeline.orients_first:
        start = replace(start, size=oriented_size(start.size, source.orientation), oriented=True)
    shared, error = _predicted(start, pipeline.operations, "pipeline.operations", source, limits)
    if error is not None:
        raise PipelineInvalid("the pipeline would make an image over the limits", errors=[error])
    sizes: dict[str, tuple[int, int]] = {}
    errors: list[FieldError] = []
    for index, output in enumerate(pipeline.outputs()):
        path = f"pipeline.variants.{index}.operations"
        final, error = _predicted(shared, output.operations, path, source, limits)
        if error is None and not final.made:
            problem = _size_problem(final.size, limits)
            if problem is not None:
                error = FieldError(_output_path(pipeline, index), f"the output {problem}")
        if error is not None:
            errors.append(error)
        sizes[output.name] = final.size
    if errors:
        raise PipelineInvalid("the pipeline would make an image over the limits", errors=errors)
    return sizes


# ---------------------------------------------------------------------------- planning


Shrink = ResizeParams | ThumbnailParams


def _resampled_size(size: tuple[int, int], op: Shrink) -> tuple[int, int]:
    if isinstance(op, ResizeParams):
        return resize.resampled_size(size, op)
    return thumbnail.output_size(size, op)


def _shrinks(size: tuple[int, int], op: Operation) -> bool:
    if not isinstance(op, ResizeParams | ThumbnailParams):
        return False
    resampled = _resampled_size(size, op)
    return resampled[0] <= size[0] and resampled[1] <= size[1]


def _first_resamples(source: SourceInfo, pipeline: Pipeline) -> list[tuple[int, int]] | None:
    """The size each output first resamples to (stored orientation), when every output
    starts by shrinking; None when any does not, and the source must be decoded whole."""
    stored = (source.width, source.height)
    targets = []
    for output in pipeline.outputs():
        oriented = pipeline.orients_first
        first: Operation | None = None
        for op in pipeline.operations_for(output):
            if not isinstance(op, AutoOrientParams):
                first = op
                break
            oriented = True
        orientation = source.orientation if oriented else 1
        logical = oriented_size(stored, orientation)
        if first is None or not _shrinks(logical, first):
            return None
        assert isinstance(first, ResizeParams | ThumbnailParams)
        targets.append(oriented_size(_resampled_size(logical, first), orientation))
    return targets


def _draft_request(source: SourceInfo, targets: list[tuple[int, int]]) -> tuple[int, int] | None:
    """What to ask a JPEG decoder for: the largest target any output needs, plus headroom."""
    needed = (max(t[0] for t in targets), max(t[1] for t in targets))
    request = (math.ceil(needed[0] * DRAFT_HEADROOM), math.ceil(needed[1] * DRAFT_HEADROOM))
    # Pillow scales by 1/2, 1/4 or 1/8 only: below a factor of 2 there is nothing to gain.
    if min(source.width // request[0], source.height // request[1]) < 2:
        return None
    return request


def _reduce_factor(size: tuple[int, int], targets: list[tuple[int, int]]) -> int:
    """The integer reduce() factor that keeps every target at least 2x below the image."""
    return min(min(size[0] // (2 * t[0]), size[1] // (2 * t[1])) for t in targets)


_SMART_GRAVITIES = frozenset({"entropy", "attention"})
_GREY = GrayscaleParams()


def _colour_blind(op: Operation) -> bool:
    """Whether the step treats every channel alike (moving, resampling or blurring them),
    so that a grayscale after it may run before it: the luma is a weighted sum of the
    channels, which commutes with all of these."""
    if isinstance(op, CropParams):
        return op.gravity not in _SMART_GRAVITIES  # these weigh colour and skin tones
    return isinstance(
        op,
        AutoOrientParams
        | ResizeParams
        | ThumbnailParams
        | BlurParams
        | RotateParams
        | FlipParams
        | FlopParams,
    )


def _greys_ahead(ops: Sequence[Operation]) -> list[bool]:
    """For each step, whether it may work on the luma alone: a grayscale comes later with
    only colour-blind steps between. One channel instead of three is a third of the work
    for resampling and blurring, and the grayscale then finds nothing left to do."""
    ahead = [False] * len(ops)
    pending = False
    for index in reversed(range(len(ops))):
        op = ops[index]
        if isinstance(op, GrayscaleParams):
            pending = True
        elif _colour_blind(op):
            ahead[index] = pending
        else:
            pending = False
    return ahead


def _wants_luma_only(ops: Sequence[Operation]) -> bool:
    """Whether these steps, run from the source, need nothing of it but its luma."""
    return bool(ops) and (isinstance(ops[0], GrayscaleParams) or _greys_ahead(ops)[0])


def _luma_suffices(image: Image.Image, pipeline: Pipeline) -> bool:
    """Whether a colour JPEG may be decoded to its luma alone (its Y channel, the same
    weighting as a grayscale), skipping the chroma: when every output turns grey before
    anything sees colour, and no colour profile must be applied first."""
    if image.mode != "RGB" or image.info.get("icc_profile"):
        return False
    return all(_wants_luma_only(pipeline.operations_for(o)) for o in pipeline.outputs())


# ---------------------------------------------------------------------------- running


@dataclass(frozen=True)
class _Work:
    """An image on its way through the operations, with what is still owed to it.

    Orientation and the sRGB conversion are applied lazily, so that a first shrink can
    run before them on the large image and they then cost little on the small one.
    """

    image: Image.Image
    size: tuple[int, int]
    """The size the operations see (the source's, oriented once the orientation is due)."""
    orientation: int
    """EXIF orientation due but not yet applied to the pixels (1: none)."""
    oriented: bool
    """Whether the source's orientation is applied or due (it is never applied twice)."""
    exif: bytes | None
    in_source_space: bool
    """Whether the pixels are still in the source's ICC profile's colour space."""
    owned: bool
    """Whether only this branch holds `image`, which may then be changed in place."""


def _exif_without_orientation(exif: bytes) -> bytes:
    parsed = Image.Exif()
    parsed.load(exif)
    parsed.pop(ExifTags.Base.Orientation, None)
    return parsed.tobytes()


def _decode(image: Image.Image, limits: ImageLimits) -> Image.Image:
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise TooManyPixels(
            f"the image has too many pixels ({error}); "
            f"{limits.describe('max_source_pixels', 'pixels')}"
        ) from None
    except DECODER_ERRORS as error:
        raise ProcessingFailed(f"the image data is corrupt or truncated: {error}") from None
    return image


def _decode_asset(asset_id: uuid.UUID, data: bytes, limits: ImageLimits) -> Image.Image:
    """An uploaded watermark image, upright, in sRGB, with an alpha channel."""
    try:
        image, info = open_source(data, limits)
        image = _decode(image, limits)
    except ImageRejected as error:
        raise ProcessingFailed(
            f"the watermark asset {asset_id} cannot be used: {error.detail}"
        ) from None
    icc = image.info.get("icc_profile")
    if isinstance(icc, bytes) and icc:
        image = to_srgb(image, icc)
    return to_working_mode(orient(image, info.orientation), alpha=True)


@dataclass
class _Runner:
    """Runs the steps of one pipeline on one decoded source, reporting progress."""

    pipeline: Pipeline
    source: SourceInfo
    limits: ImageLimits
    icc_profile: bytes | None
    assets: dict[uuid.UUID, Image.Image]
    report: ProgressReport | None
    steps: int
    done: int = 0

    def progress(self, stage: str) -> None:
        self.done += 1
        if self.report is not None:
            span = ENCODING_PERCENT - DECODING_PERCENT
            self.report(stage, DECODING_PERCENT + span * self.done // self.steps)

    def due_orientation(self, work: _Work) -> _Work:
        orientation = self.source.orientation
        if work.oriented:
            return work
        exif = work.exif
        if orientation != 1 and exif is not None:
            exif = _exif_without_orientation(exif)
        return replace(
            work,
            size=oriented_size(work.size, orientation),
            orientation=orientation,
            oriented=True,
            exif=exif,
        )

    def _stored_size(self, work: _Work) -> tuple[int, int]:
        """`work.size` in the orientation the pixels still have."""
        return oriented_size(work.size, work.orientation)

    def _converted(self, image: Image.Image, owned: bool) -> Image.Image:
        assert self.icc_profile is not None
        return to_srgb(image, self.icc_profile, in_place=owned)

    def settled(self, work: _Work, *, srgb: bool) -> _Work:
        """The work with everything owed applied: full size, sRGB if asked, upright."""
        image, owned = work.image, work.owned
        stored = self._stored_size(work)
        if image.size != stored:  # reduced for a shrink that did not come; not planned
            image, owned = resize.resample(image, stored), True
        in_source_space = work.in_source_space
        if srgb and in_source_space:
            converted = self._converted(image, owned)
            owned = owned or converted is not image
            image, in_source_space = converted, False
        if work.orientation != 1:
            image, owned = orient(image, work.orientation), True
        return replace(
            work, image=image, orientation=1, in_source_space=in_source_space, owned=owned
        )

    def _converts_before_resampling(self, work: _Work, *, srgb: bool, grey: bool) -> bool:
        if srgb and work.in_source_space:
            # CMYK and the like meet their profile first; the others after the shrink,
            # and the luma only after that conversion.
            return work.image.mode not in _WORKING_MODES
        return grey and work.image.mode not in {"L", "LA"}

    def first_resample(
        self, work: _Work, ops: Sequence[Operation], *, srgb: bool
    ) -> tuple[int, int] | None:
        """The stored size these steps first resample `work.image` itself to, when they
        start (after any auto_orient) by shrinking it as it is; else None."""
        greys = _greys_ahead(ops)
        for index, op in enumerate(ops):
            if isinstance(op, AutoOrientParams):
                work = self.due_orientation(work)
                continue
            if not isinstance(op, ResizeParams | ThumbnailParams) or not _shrinks(work.size, op):
                return None
            if self._converts_before_resampling(work, srgb=srgb, grey=greys[index]):
                return None
            return oriented_size(_resampled_size(work.size, op), work.orientation)
        return None

    def shrunk(
        self,
        work: _Work,
        op: Shrink,
        *,
        srgb: bool,
        grey: bool = False,
        cascade: ResampleCascade | None = None,
    ) -> _Work:
        """A shrinking resize or thumbnail: resample the pixels as they are (reduced,
        sideways), then convert and turn the small result, then pad or crop it.

        With `grey` (a grayscale follows) the luma is taken before resampling when no
        colour conversion is still owed. With a `cascade`, the resample of the unchanged
        image is taken from it (it may be made from a larger resample)."""
        image, in_source_space = work.image, work.in_source_space
        convert = srgb and in_source_space
        if self._converts_before_resampling(work, srgb=srgb, grey=grey):
            if convert:
                image = self._converted(image, work.owned)
                in_source_space = convert = False
            if grey and not convert:
                image = grayscale.apply(image, _GREY)
        target = oriented_size(_resampled_size(work.size, op), work.orientation)
        if cascade is not None and image is work.image:
            image, fresh = cascade.take(target)
            owned = fresh or (work.owned and image is work.image)
        else:
            image = resize.resample(image, target)
            owned = work.owned or image is not work.image
        if convert:
            converted = self._converted(image, owned)
            owned = owned or converted is not image  # a cascade's image may be shared
            image, in_source_space = converted, False
        if work.orientation != 1:
            image, owned = orient(image, work.orientation), True
        if isinstance(op, ResizeParams):
            finished = resize.finish(image, op, resize.output_size(work.size, op))
            image, owned = finished, owned or finished is not image
        return replace(
            work,
            image=image,
            size=image.size,
            orientation=1,
            in_source_space=in_source_space,
            owned=owned,
        )

    def applied(self, work: _Work, op: Operation) -> _Work:
        if isinstance(op, WatermarkParams):
            asset = self.assets.get(op.asset) if op.asset is not None else None
            image = watermark.watermarked(work.image, op, asset, in_place=work.owned)
        else:
            image = OPERATIONS[op.op].apply(work.image, op)
        owned = work.owned or image is not work.image
        return replace(work, image=image, size=image.size, owned=owned)

    def greyed(self, work: _Work) -> _Work:
        image = grayscale.apply(work.image, _GREY)
        return replace(work, image=image, owned=work.owned or image is not work.image)

    def run(
        self,
        work: _Work,
        ops: list[Operation],
        variant: str | None,
        *,
        srgb: bool,
        cascade: ResampleCascade | None = None,
    ) -> _Work:
        """Run the steps on `work`. A `cascade` (of `work.image`) serves the first step
        when that is the shrink it was planned for (see `first_resample`)."""
        prefix = f"{variant}:" if variant is not None else ""
        greys = _greys_ahead(ops)
        for index, op in enumerate(ops):
            self.progress(f"{prefix}op:{op.op}")
            if isinstance(op, AutoOrientParams):
                work = self.due_orientation(work)
                continue
            stage = _stage(variant, index, op)
            _check_output_size(OPERATIONS[op.op].output_size(work.size, op), stage, self.limits)
            try:
                if isinstance(op, ResizeParams | ThumbnailParams) and _shrinks(work.size, op):
                    work = self.shrunk(work, op, srgb=srgb, grey=greys[index], cascade=cascade)
                else:
                    work = self.settled(work, srgb=srgb)
                    work = self.applied(self.greyed(work) if greys[index] else work, op)
                cascade = None  # only the untouched image is in it
            except Image.DecompressionBombError as error:
                raise TooManyPixels(
                    f"{stage} made too large an image ({error}); "
                    f"{self.limits.describe('max_output_pixels', 'pixels')}"
                ) from None
            except (OSError, ValueError) as error:
                raise ProcessingFailed(f"{stage} failed: {error}") from None
        return work


def _steps(pipeline: Pipeline) -> int:
    outputs = pipeline.outputs()
    return len(pipeline.operations) + sum(len(output.operations) + 1 for output in outputs)


def run_pipeline(
    data: bytes,
    pipeline: Pipeline,
    limits: ImageLimits,
    report: ProgressReport | None = None,
    assets: Mapping[uuid.UUID, bytes] | None = None,
) -> dict[str, EncodedImage]:
    """Decode the upload once, run the shared operations once, then each output's own
    operations on that shared result, and encode each; keyed by output name in order.

    The decode is planned first: a JPEG is decoded at a reduced size when every output
    starts by shrinking (and as its luma alone when every output turns grey before any
    step sees colour), and reduce()d by an integer factor while still 2x over the
    largest target. Outputs that start by shrinking the shared result take their
    resamples from one cascade (see `cascade`). Animated sources contribute their first
    frame. `assets` holds the
    bytes of the watermark images the pipeline names. Synchronous and pure: bytes in,
    bytes out. Raises the ImageRejected family only (never a bare Pillow error).
    """
    if report is not None:
        report("decoding", DECODING_PERCENT)
    image, source = open_source(data, limits)
    predict_output_sizes(source, pipeline, limits)  # refuses impossible work before decoding
    missing = pipeline.asset_ids() - set(assets or {})
    if missing:
        names = ", ".join(sorted(str(asset) for asset in missing))
        raise ProcessingFailed(f"the watermark assets {names} are not available")
    decoded_assets = {
        asset: _decode_asset(asset, (assets or {})[asset], limits) for asset in pipeline.asset_ids()
    }

    targets = _first_resamples(source, pipeline)
    if image.format in {"JPEG", "MPO"}:
        request = _draft_request(source, targets) if targets is not None else None
        mode = "L" if _luma_suffices(image, pipeline) else None
        if request is not None or mode is not None:
            image.draft(mode, request)
    image = _decode(image, limits)
    source_format = image.format
    metadata = Metadata.of(image)
    icc_profile = metadata.icc_profile
    outputs = pipeline.outputs()
    wants_srgb = [output.output.colour_profile == "srgb" for output in outputs]

    in_source_space = icc_profile is not None
    if in_source_space and image.mode not in _WORKING_MODES and any(wants_srgb):
        # Only sRGB can be written from CMYK and the like; convert while the profile fits.
        assert icc_profile is not None
        image, in_source_space = to_srgb(image, icc_profile, in_place=True), False
    if targets is not None:
        factor = _reduce_factor(image.size, targets)
        if factor >= 2:
            image = to_working_mode(image).reduce(factor)

    runner = _Runner(
        pipeline=pipeline,
        source=source,
        limits=limits,
        icc_profile=icc_profile,
        assets=decoded_assets,
        report=report,
        steps=_steps(pipeline),
    )
    work = _Work(
        image=image,
        size=(source.width, source.height),
        orientation=1,
        oriented=False,
        exif=metadata.exif,
        in_source_space=in_source_space,
        owned=True,
    )
    if pipeline.orients_first:
        work = runner.due_orientation(work)
    # The shared steps convert to sRGB only if every output wants it.
    shared = runner.run(work, pipeline.operations, None, srgb=all(wants_srgb))

    # Outputs that start by shrinking the shared result take their resamples from one
    # cascade: each from the smallest resample that is still comfortably larger.
    firsts = [
        runner.first_resample(shared, output.operations, srgb=srgb)
        for output, srgb in zip(outputs, wants_srgb, strict=True)
    ]
    planned = [size for size in firsts if size is not None]
    cascade = ResampleCascade(shared.image, planned) if len(planned) > 1 else None

    results: dict[str, EncodedImage] = {}
    for index, (output, srgb) in enumerate(zip(outputs, wants_srgb, strict=True)):
        last = index == len(outputs) - 1
        label = output.name if pipeline.variants else None
        branch = replace(shared, owned=shared.owned and last)
        from_cascade = cascade if firsts[index] is not None else None
        branch = runner.run(branch, output.operations, label, srgb=srgb, cascade=from_cascade)
        branch = runner.settled(branch, srgb=srgb)
        stage = f"variant {output.name!r}" if label else "the pipeline"
        _check_output_size(branch.image.size, stage, limits)
        runner.progress(f"{label}:encoding" if label else "encoding")
        metadata = Metadata(
            icc_profile=icc_profile if branch.in_source_space else None, exif=branch.exif
        )
        results[output.name] = encode(
            branch.image, output.output, source_format=source_format, metadata=metadata
        )
    return results


__all__ = [
    "DEFAULT_OUTPUT",
    "OutputSpec",
    "Pipeline",
    "ProgressReport",
    "Variant",
    "parse_pipeline",
    "predict_output_sizes",
    "run_pipeline",
]
