"""Size arithmetic: the side a pipeline names is exact, a derived side is the proportion
rounded once (never below 1), and the predicted size is the size produced.

The predictions are checked over odd sizes and extreme aspect ratios without pixels; a
smaller set runs real images through the operations and the whole pipeline (JPEG draft
decoding, reduce() and variant cascades included)."""

from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sample_images import encoded, reopened, scene

from pixelfleet.imaging.codecs import SourceInfo, sniff
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations import OPERATIONS, resize, thumbnail
from pixelfleet.imaging.operations.resize import ResizeParams
from pixelfleet.imaging.operations.thumbnail import ThumbnailParams
from pixelfleet.imaging.plan import prepare
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.imaging.spec import parse_pipeline

LIMITS = ImageLimits(max_source_pixels=10**9, max_output_pixels=10**12, max_output_side=10**9)
FITS = ("inside", "contain", "cover", "outside", "fill")

SIDE = st.integers(1, 5000)
SIZES = st.one_of(
    st.tuples(SIDE, SIDE),
    st.tuples(st.integers(1, 5), st.integers(1000, 5000)),  # a thin column
    st.tuples(st.integers(1000, 5000), st.integers(1, 5)),  # a thin strip
)


def derived(other: int, named: int, side: int) -> int:
    """The exact proportion `other * named / side`, rounded to the nearest pixel once."""
    exact = Fraction(other * named, side)
    return max(1, int(exact + Fraction(1, 2)))


def within(inner: tuple[int, int], outer: tuple[int, int]) -> bool:
    return inner[0] <= outer[0] and inner[1] <= outer[1]


def source(size: tuple[int, int]) -> SourceInfo:
    return SourceInfo("png", size[0], size[1], 1, 1, "image/png")


# ---------------------------------------------------------------- the probes in the report


def test_a_width_alone_gives_exactly_that_width() -> None:
    assert resize.output_size((326, 268), ResizeParams(width=256)) == (256, 210)
    assert resize.output_size((1000, 5), ResizeParams(width=256)) == (256, 1)
    assert resize.apply(scene(326, 268), ResizeParams(width=256)).size == (256, 210)
    assert resize.apply(scene(1000, 5), ResizeParams(width=256)).size == (256, 1)


# ---------------------------------------------------------------- predictions, no pixels


@given(size=SIZES, named=SIDE, axis=st.sampled_from(["width", "height"]), fit=st.sampled_from(FITS))
@settings(max_examples=300, deadline=None)
def test_one_named_side_is_exact_and_the_other_is_the_proportion_rounded_once(
    size: tuple[int, int], named: int, axis: str, fit: Any
) -> None:
    w, h = size
    params = ResizeParams.model_validate({axis: named, "fit": fit, "upscale": True})

    out = resize.output_size(size, params)

    if axis == "width":
        assert out == (named, derived(h, named, w))
    else:
        assert out == (derived(w, named, h), named)


@given(size=SIZES, named=SIDE, axis=st.sampled_from(["width", "height"]), fit=st.sampled_from(FITS))
@settings(max_examples=200, deadline=None)
def test_without_upscale_a_named_side_within_the_image_is_still_exact(
    size: tuple[int, int], named: int, axis: str, fit: Any
) -> None:
    index = 0 if axis == "width" else 1
    params = ResizeParams.model_validate({axis: named, "fit": fit})

    out = resize.output_size(size, params)

    if named <= size[index]:
        assert out[index] == named
    elif fit != "contain":  # contain pads up to the box; the others leave the image alone
        assert out == size


@given(size=SIZES, box=st.tuples(SIDE, SIDE), fit=st.sampled_from(FITS))
@settings(max_examples=300, deadline=None)
def test_two_named_sides_fit_the_box_as_the_fit_says(
    size: tuple[int, int], box: tuple[int, int], fit: Any
) -> None:
    w, h = size
    bw, bh = box
    params = ResizeParams(width=bw, height=bh, fit=fit, upscale=True)

    out = resize.output_size(size, params)
    scaled = resize.resampled_size(size, params)

    if fit in {"contain", "cover", "fill"}:
        assert out == box
    else:
        assert out == scaled
    if fit != "fill":
        # The side that decides the scale is the box's; the other is its proportion.
        width_decides = (bw * h <= bh * w) == (fit in {"inside", "contain"})
        if width_decides:
            assert scaled == (bw, derived(h, bw, w))
        else:
            assert scaled == (derived(w, bh, h), bh)
    if fit in {"inside", "contain"}:
        assert within(scaled, box)
    if fit in {"cover", "outside"}:
        assert within(box, scaled)


@given(size=SIZES, box=st.tuples(SIDE, SIDE))
@settings(max_examples=300, deadline=None)
def test_a_thumbnail_fills_one_side_of_its_box_and_never_enlarges(
    size: tuple[int, int], box: tuple[int, int]
) -> None:
    out = thumbnail.output_size(size, ThumbnailParams(width=box[0], height=box[1]))

    if box[0] >= size[0] and box[1] >= size[1]:
        assert out == size
    else:
        assert within(out, box)
        assert out[0] == box[0] or out[1] == box[1]
        assert min(out) >= 1


@given(size=SIZES, named=SIDE, axis=st.sampled_from(["width", "height"]))
@settings(max_examples=200, deadline=None)
def test_a_pipeline_predicts_the_named_side_through_variants(
    size: tuple[int, int], named: int, axis: str
) -> None:
    index = 0 if axis == "width" else 1
    raw = {
        "operations": [{"op": "pad", "left": 1, "top": 1}],
        "variants": [
            {"name": "exact", "operations": [{"op": "resize", axis: named, "upscale": True}]},
            {
                "name": "framed",
                "operations": [
                    {"op": "resize", axis: named, "fit": "contain", "upscale": True},
                    {"op": "rotate", "angle": 90},
                ],
            },
        ],
    }

    sizes = prepare(source(size), parse_pipeline(raw, LIMITS), LIMITS).sizes

    assert sizes["exact"][index] == named
    assert sizes["framed"][1 - index] == named


# ---------------------------------------------------------------- real pixels, fewer examples

SMALL_SIDE = st.integers(1, 64)
SMALL_SIZES = st.one_of(
    st.tuples(SMALL_SIDE, SMALL_SIDE),
    st.tuples(st.integers(1, 3), st.integers(100, 300)),
    st.tuples(st.integers(100, 300), st.integers(1, 3)),
)


def _resize(draw: st.DrawFn) -> dict[str, Any]:
    sides = draw(st.sampled_from([("width",), ("height",), ("width", "height")]))
    raw: dict[str, Any] = {side: draw(st.integers(1, 96)) for side in sides}
    fit, upscale = draw(st.sampled_from(FITS)), draw(st.booleans())
    return {"op": "resize", "fit": fit, "upscale": upscale, **raw}


@st.composite
def operation(draw: st.DrawFn, size: tuple[int, int]) -> dict[str, Any]:
    """One step that can run on an image of `size`."""
    kind = draw(st.sampled_from(["resize", "thumbnail", "crop", "rotate", "pad", "watermark"]))
    if kind == "resize":
        return _resize(draw)
    if kind == "thumbnail":
        return {"op": kind, "width": draw(st.integers(1, 96)), "height": draw(st.integers(1, 96))}
    if kind == "crop":
        width, height = draw(st.integers(1, size[0])), draw(st.integers(1, size[1]))
        return {"op": kind, "width": width, "height": height, "gravity": "northeast"}
    if kind == "rotate":
        return {"op": kind, "angle": draw(st.sampled_from([90, 180, 33.3, -7, 271.5]))}
    if kind == "pad":
        return {"op": kind, "left": draw(st.integers(0, 9)), "bottom": draw(st.integers(0, 9))}
    return {"op": kind, "text": "PF", "size": 8, "margin": draw(st.integers(0, 4))}


@given(data=st.data(), size=SMALL_SIZES, alpha=st.booleans())
@settings(max_examples=80, deadline=None)
def test_every_operation_makes_the_size_it_predicts(
    data: st.DataObject, size: tuple[int, int], alpha: bool
) -> None:
    raw = data.draw(operation(size))
    spec = OPERATIONS[raw["op"]]
    params = spec.params.model_validate(raw)

    assert spec.apply(scene(*size, alpha=alpha), params).size == spec.output_size(size, params)


@st.composite
def pipelines(draw: st.DrawFn, size: tuple[int, int]) -> dict[str, Any]:
    shared = [_resize(draw)] if draw(st.booleans()) else []
    variants = []
    for index in range(draw(st.integers(1, 3))):
        first = draw(st.sampled_from(["resize", "thumbnail"]))
        if first == "resize":
            step = _resize(draw)
        else:
            step = {"op": "thumbnail", "width": draw(SMALL_SIDE), "height": draw(SMALL_SIDE)}
        then = [{"op": "pad", "left": 1}] if draw(st.booleans()) else []
        variants.append({"name": f"v{index}", "operations": [step, *then]})
    return {"operations": shared, "variants": variants}


@given(data=st.data(), size=st.tuples(st.integers(200, 420), st.integers(200, 420)))
@settings(max_examples=25, deadline=None)
def test_a_drafted_jpeg_comes_out_at_the_predicted_sizes(
    data: st.DataObject, size: tuple[int, int]
) -> None:
    # Shrinks to under a quarter: the decoder drafts at 1/2 to 1/8, then reduce() and
    # a cascade share the work between variants; the sizes must not notice.
    upload = encoded(scene(*size), "JPEG", quality=70)
    piped = parse_pipeline(data.draw(pipelines(size)), LIMITS)

    predicted = prepare(sniff(upload, LIMITS), piped, LIMITS).sizes
    made = run_pipeline(upload, piped, LIMITS)

    assert {name: (out.width, out.height) for name, out in made.items()} == predicted


@given(data=st.data(), size=SMALL_SIZES)
@settings(max_examples=25, deadline=None)
def test_odd_sized_images_come_out_at_the_predicted_sizes(
    data: st.DataObject, size: tuple[int, int]
) -> None:
    upload = encoded(scene(*size), "PNG", compress_level=1)
    steps = [data.draw(operation(size))]
    piped = parse_pipeline({"operations": steps, "output": {"format": "png"}}, LIMITS)

    predicted = prepare(sniff(upload, LIMITS), piped, LIMITS).sizes
    made = run_pipeline(upload, piped, LIMITS)["default"]

    assert (made.width, made.height) == predicted["default"]
    assert reopened(made.data).size == predicted["default"]
