"""Running a pipeline on an upload with Pillow: decode once, run the shared operations
once, then each output's own operations, and encode each output.

The work is planned around its cost: a JPEG is decoded at a reduced size when every output
starts by shrinking (by OpenCV, shrunk in NumPy as it is decoded, when the shrink is too
small for that: see `fast_shrink`), orientation and colour conversion wait until the image
is small, and outputs that start by shrinking share their resamples (see `cascade`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import cast

from PIL import ExifTags, Image

from pixelfleet.imaging import fast_shrink
from pixelfleet.imaging.animation import animations
from pixelfleet.imaging.cascade import ResampleCascade
from pixelfleet.imaging.codecs import (
    EncodedImage,
    Metadata,
    SourceInfo,
    decode,
    encode_output,
    open_source,
)
from pixelfleet.imaging.colours import to_working_mode
from pixelfleet.imaging.errors import ProcessingFailed, TooManyPixels
from pixelfleet.imaging.formats import OutputFormatName
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
    ResizeParams,
    RotateParams,
    ThumbnailParams,
    WatermarkParams,
    grayscale,
    resize,
    thumbnail,
    watermark,
)
from pixelfleet.imaging.operations.auto_orient import orient, oriented_size
from pixelfleet.imaging.operations.crop import SMART_GRAVITIES
from pixelfleet.imaging.plan import prepare, size_problem
from pixelfleet.imaging.profiles import to_srgb
from pixelfleet.imaging.rendered import (
    DECODING_PERCENT,
    ENCODING_PERCENT,
    ProgressReport,
    Rendered,
    with_placeholder,
)
from pixelfleet.imaging.spec import DEFAULT_OUTPUT, Pipeline
from pixelfleet.imaging.watermark_assets import asset_image

DRAFT_HEADROOM = 1.25
"""A JPEG is decoded at a reduced (DCT-domain) size only down to this much above the first
resample's target: closer than that, the DCT's softer scaling shows against LANCZOS."""

_WORKING_MODES = frozenset({"L", "LA", "RGB", "RGBA"})


def _check_output_size(size: tuple[int, int], stage: str, limits: ImageLimits) -> None:
    """The last guard while running (the prediction refused such pipelines already)."""
    problem = size_problem(size, limits)
    if problem is not None:
        raise ProcessingFailed(f"{stage} {problem}")


def _stage(variant: str | None, index: int, op: Operation) -> str:
    where = f"variant {variant!r} " if variant is not None else ""
    return f"{where}operation {index} ({op.op})"


# ------------------------------------------------------------------ cheap work first


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


_GREY = GrayscaleParams()


def _colour_blind(op: Operation) -> bool:
    """Whether the step treats every channel alike (moving, resampling or blurring them),
    so that a grayscale after it may run before it: the luma is a weighted sum of the
    channels, which commutes with all of these."""
    if isinstance(op, CropParams | ResizeParams):
        return op.gravity not in SMART_GRAVITIES  # these weigh colour and skin tones
    return isinstance(
        op,
        AutoOrientParams
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


def _rendered(
    image: Image.Image,
    source: SourceInfo,
    pipeline: Pipeline,
    limits: ImageLimits,
    assets: dict[uuid.UUID, Image.Image],
    report: ProgressReport | None,
    data: bytes | None = None,
) -> Iterator[Rendered]:
    """Each output of `pipeline` made from one opened (or decoded) picture: its decode
    planned, the shared steps run once, and each output's own steps on their result.
    With the upload's `data` (a still JPEG only shrunk by 1x-4x first), the decode and
    first shrink may be made in NumPy (see `fast_shrink`)."""
    targets = _first_resamples(source, pipeline)
    request = _draft_request(source, targets) if targets is not None else None
    luma = image.format in {"JPEG", "MPO"} and _luma_suffices(image, pipeline)
    shrunk = None
    if data is not None and targets is not None and request is None:
        # Too small a shrink for a reduced decode: OpenCV's is quicker (see fast_shrink).
        root = fast_shrink.root_target((source.width, source.height), targets)
        if root is not None:
            shrunk = fast_shrink.decoded_shrunk(image, data, root, luma=luma)
    if shrunk is not None:
        metadata = Metadata.of(image)  # a JPEG's header holds all of it
        image = shrunk
    else:
        if image.format in {"JPEG", "MPO"}:
            mode = "L" if luma else None
            if request is not None or mode is not None:
                image.draft(mode, request)
        elif image.format == "HEIF" and request is not None:
            image.draft(None, request)  # the file's own smaller copy, if it carries one as large
        image = decode(image, limits)
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
        assets=assets,
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
    resampler = fast_shrink.resample if shrunk is not None else None
    cascade = ResampleCascade(shared.image, planned, resampler) if len(planned) > 1 else None

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
        kept = Metadata(
            icc_profile=icc_profile if branch.in_source_space else None, exif=branch.exif
        )
        yield Rendered(output.name, output.output, branch.image, kept)


def _only(pipeline: Pipeline, names: set[str]) -> Pipeline | None:
    """The pipeline with only the outputs named (None when that is none of them)."""
    if not pipeline.variants:
        return pipeline if DEFAULT_OUTPUT in names else None
    variants = [variant for variant in pipeline.variants if variant.name in names]
    return pipeline.model_copy(update={"variants": variants}) if variants else None


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
    resamples from one cascade (see `cascade`). An output that keeps an animation (see
    `plan.animates`) runs every frame through its steps and is written with the source's
    timing; the others take the first frame. `assets` holds the bytes of the watermark
    images the pipeline names. Synchronous and pure: bytes in, bytes out. Raises the
    ImageRejected family only (never a bare Pillow error).
    """
    if report is not None:
        report("decoding", DECODING_PERCENT)
    image, source = open_source(data, limits)
    plan = prepare(source, pipeline, limits)  # refuses impossible work before decoding
    missing = pipeline.asset_ids() - set(assets or {})
    if missing:
        names = ", ".join(sorted(str(asset) for asset in missing))
        raise ProcessingFailed(f"the watermark assets {names} are not available")
    decoded_assets = {
        asset: asset_image(asset, (assets or {})[asset], limits)
        for asset in pipeline.asset_ids()
    }
    moving = {output.name for output in plan.outputs if output.frames > 1}
    still = _only(pipeline, {output.name for output in plan.outputs} - moving)
    results: dict[str, EncodedImage] = {}
    if still is not None:
        source_format = image.format
        progress = None if moving else report  # an animation's frames tell its progress
        rendered_outputs = _rendered(image, source, still, limits, decoded_assets, progress, data)
        for rendered in rendered_outputs:
            encoded = encode_output(
                rendered.image,
                rendered.output,
                source_format=source_format,
                metadata=rendered.metadata,
            )
            results[rendered.name] = with_placeholder(encoded, rendered)
    animated = _only(pipeline, moving)
    if animated is not None:
        moving_pipeline = animated  # narrowed, for the closure below
        formats = {
            output.name: cast(OutputFormatName, output.format)
            for output in plan.outputs
            if output.name in moving
        }
        # The still outputs decoded (and may have drawn on) the first frame: read it afresh.
        opened = image if still is None else open_source(data, limits)[0]

        def render(frame: Image.Image) -> Iterator[Rendered]:
            return _rendered(frame, source, moving_pipeline, limits, decoded_assets, None)

        labelled = bool(pipeline.variants)
        results |= animations(
            opened, source, render, formats, limits, report, labelled=labelled
        )
    return {output.name: results[output.name] for output in pipeline.outputs()}


__all__ = ["run_pipeline"]
