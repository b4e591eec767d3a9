"""What a pipeline will make of one source, known from the source's header alone.

`prepare` is imaging's one entry point for a task before it runs: it checks the pipeline
against the source (its format, size and frames) and the limits, predicts the size of
every image each step would make, resolves each output's format, and hands back the
plan a task carries: the pipeline as stored, and what its price depends on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pixelfleet.errors import FieldError
from pixelfleet.imaging.codecs import SourceInfo
from pixelfleet.imaging.errors import PipelineInvalid, TooManyFrames, TooManyPixels
from pixelfleet.imaging.formats import (
    AUTO,
    RequestedFormat,
    option_problems,
    output_format_for,
)
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations import OPERATIONS, AutoOrientParams, Operation
from pixelfleet.imaging.operations.auto_orient import oriented_size
from pixelfleet.imaging.spec import OutputSpec, Pipeline, limit_errors


@dataclass(frozen=True)
class PlannedOutput:
    """One output as the plan foresees it."""

    name: str
    format: RequestedFormat
    """Its format (`auto`: AVIF, WebP and JPEG or PNG of it, one picked at delivery)."""
    width: int
    height: int
    operations: tuple[str, ...]
    """The names of its own operations, run after the shared ones."""
    size_target: bool
    """Whether it asks for `max_bytes` (a search over qualities)."""
    frames: int = 1
    """How many frames it is written with: the source's when it keeps the animation."""


@dataclass(frozen=True)
class Plan:
    """A pipeline checked against one source, before any pixel is decoded."""

    source: SourceInfo
    pipeline: Pipeline
    """The pipeline with every output's format written out (a missing one follows the
    source's), as the task stores it and the worker runs it."""
    shared_operations: tuple[str, ...]
    """The names of the operations every output shares, run once."""
    outputs: tuple[PlannedOutput, ...]

    @property
    def sizes(self) -> dict[str, tuple[int, int]]:
        """Each output's predicted dimensions, by name."""
        return {output.name: (output.width, output.height) for output in self.outputs}


def prepare(source: SourceInfo, pipeline: Pipeline, limits: ImageLimits) -> Plan:
    """The plan of `pipeline` on a source described by `source`, computed without decoding.

    Every image a step would make, in the shared operations and in every variant, is
    checked against the output limits (`max_output_side`, `max_output_pixels`), and so
    is each output itself (a source passed through unchanged, say).

    Raises PipelineInvalid for a pipeline over the limits (operations per output,
    variants, sides, any predicted image; each error names the operation or output) or
    output options the format lacks; TooManyPixels and TooManyFrames for a source over
    its limits; ProcessingFailed when a crop falls outside.
    """
    formats = [_format_of(output.output.format, source.format) for output in pipeline.outputs()]
    _check_pipeline(pipeline, source, formats, limits)
    predicted = _predicted_sizes(source, pipeline, limits)
    sizes = [size for size, _ in predicted]
    frames = [
        source.frames if animates(source, output.output, output_format) else 1
        for output, output_format in zip(pipeline.outputs(), formats, strict=True)
    ]
    _check_animation(pipeline, source, [largest for _, largest in predicted], frames, limits)
    outputs = tuple(
        PlannedOutput(
            name=output.name,
            format=output_format,
            width=size[0],
            height=size[1],
            operations=tuple(operation.op for operation in output.operations),
            size_target=output.output.max_bytes is not None,
            frames=count,
        )
        for output, output_format, size, count in zip(
            pipeline.outputs(), formats, sizes, frames, strict=True
        )
    )
    return Plan(
        source=source,
        pipeline=_with_output_formats(pipeline, formats),
        shared_operations=tuple(operation.op for operation in pipeline.operations),
        outputs=outputs,
    )


ANIMATED_FORMATS = frozenset({"gif", "webp"})
"""The formats that hold an animation, as source and as output."""


def animates(source: SourceInfo, spec: OutputSpec, output_format: RequestedFormat) -> bool:
    """Whether an output keeps the source's animation: an animated GIF or WebP written as
    GIF or WebP, unless it says `"animated": false`."""
    return (
        spec.animated
        and source.frames > 1
        and source.format in ANIMATED_FORMATS
        and output_format in ANIMATED_FORMATS
    )


def _check_animation(
    pipeline: Pipeline,
    source: SourceInfo,
    largest: list[int],
    frames: list[int],
    limits: ImageLimits,
) -> None:
    """Refuses animations over `max_animation_pixels`: every frame of every animated output is
    decoded and taken through its steps, so each frame counts the largest picture among its
    decode and the images its steps make (`largest`, per output), summed over the frames and
    over the animated outputs."""
    total = 0
    for index, (biggest, count) in enumerate(zip(largest, frames, strict=True)):
        if count == 1:
            continue
        total += max(source.frame_pixels, biggest) * count
        if total > limits.max_animation_pixels:
            raise PipelineInvalid(
                "the animation is over the limits",
                errors=[
                    FieldError(
                        f"{_output_path(pipeline, index)}.animated",
                        f"{count} frames of this animation (with the animated outputs before "
                        f"it) would take {total} pixels of work; "
                        f"{limits.describe('max_animation_pixels', 'pixels')}: make it "
                        "smaller, or ask for the first frame with animated false",
                    )
                ],
            )


def _format_of(requested: RequestedFormat | None, source_format: str) -> RequestedFormat:
    """The format an output is written in: as asked (`auto` included), else from the source."""
    if requested == AUTO:
        return AUTO
    return output_format_for(requested, source_format).name


def _with_output_formats(pipeline: Pipeline, formats: list[RequestedFormat]) -> Pipeline:
    """The pipeline with every output's format written out, in the order of its outputs."""
    if pipeline.variants:
        variants = [
            variant.model_copy(
                update={"output": variant.output.model_copy(update={"format": name})}
            )
            for variant, name in zip(pipeline.variants, formats, strict=True)
        ]
        return pipeline.model_copy(update={"variants": variants})
    (name,) = formats
    output = pipeline.output.model_copy(update={"format": name})
    return pipeline.model_copy(update={"output": output})


def _output_path(pipeline: Pipeline, index: int) -> str:
    return f"pipeline.variants.{index}.output" if pipeline.variants else "pipeline.output"


def _check_pipeline(
    pipeline: Pipeline, source: SourceInfo, formats: list[RequestedFormat], limits: ImageLimits
) -> None:
    """The checks that need the source: limits, and output options against the format
    each output is written in."""
    errors = limit_errors(pipeline, limits)
    for index, (output, output_format) in enumerate(zip(pipeline.outputs(), formats, strict=True)):
        spec = output.output
        problems = option_problems(
            output_format,
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


def size_problem(size: tuple[int, int], limits: ImageLimits) -> str | None:
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


@dataclass(frozen=True)
class _Predicted:
    size: tuple[int, int]
    oriented: bool
    made: bool
    """Whether an operation made an image of `size` (else it is the source's, as decoded)."""
    largest: int = 0
    """The pixels of the largest image an operation made on the way."""


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
        problem = size_problem(size, limits)
        if problem is not None:
            return state, FieldError(f"{path}.{index}", f"{op.op} {problem}")
        largest = max(state.largest, size[0] * size[1])
        state = _Predicted(size=size, oriented=state.oriented, made=True, largest=largest)
    return state, None


def _predicted_sizes(
    source: SourceInfo, pipeline: Pipeline, limits: ImageLimits
) -> list[tuple[tuple[int, int], int]]:
    """Each output's dimensions and the pixels of the largest image its steps (the shared ones
    included) make, in order; PipelineInvalid for any step over the limits."""
    start = _Predicted(size=(source.width, source.height), oriented=False, made=False)
    if pipeline.orients_first:
        start = replace(start, size=oriented_size(start.size, source.orientation), oriented=True)
    shared, error = _predicted(start, pipeline.operations, "pipeline.operations", source, limits)
    if error is not None:
        raise PipelineInvalid("the pipeline would make an image over the limits", errors=[error])
    sizes: list[tuple[tuple[int, int], int]] = []
    errors: list[FieldError] = []
    for index, output in enumerate(pipeline.outputs()):
        path = f"pipeline.variants.{index}.operations"
        final, error = _predicted(shared, output.operations, path, source, limits)
        if error is None and not final.made:
            problem = size_problem(final.size, limits)
            if problem is not None:
                error = FieldError(_output_path(pipeline, index), f"the output {problem}")
        if error is not None:
            errors.append(error)
        sizes.append((final.size, final.largest))
    if errors:
        raise PipelineInvalid("the pipeline would make an image over the limits", errors=errors)
    return sizes


__all__ = ["Plan", "PlannedOutput", "prepare", "size_problem"]
