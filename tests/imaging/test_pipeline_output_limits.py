"""Every image a pipeline would make, however it gets there, is held to the output limits
before any pixel is decoded, and the refusal names the step and the limit."""

from typing import Any

import pytest
from sample_images import encoded, scene

from pixelfleet.errors import FieldError
from pixelfleet.imaging.codecs import SourceInfo
from pixelfleet.imaging.errors import PipelineInvalid
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.plan import prepare
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.imaging.spec import parse_pipeline

SIDE_LIMIT = ImageLimits(max_output_side=1000)
PIXEL_LIMIT = ImageLimits(max_output_pixels=100_000)


def source(width: int, height: int, orientation: int = 1) -> SourceInfo:
    return SourceInfo(
        format="png",
        width=width,
        height=height,
        frames=1,
        bytes=1,
        content_type="image/png",
        orientation=orientation,
    )


def refusal(raw: dict[str, Any], limits: ImageLimits, size: tuple[int, int]) -> list[FieldError]:
    piped = parse_pipeline(raw, limits)  # each side on its own is within the limits
    with pytest.raises(PipelineInvalid) as refused:
        prepare(source(*size), piped, limits)
    assert refused.value.status == 422
    return refused.value.errors


def test_two_pads_each_under_the_side_limit_are_refused_at_the_second() -> None:
    raw = {"operations": [{"op": "pad", "left": 600}, {"op": "pad", "right": 600}]}

    [error] = refusal(raw, SIDE_LIMIT, (100, 100))

    assert error.field == "pipeline.operations.1"
    assert "1300x100" in error.message
    assert "the limit is 1000 pixels per side (max_output_side)" in error.message


GROWING_STEPS: dict[str, tuple[dict[str, Any], tuple[int, int]]] = {
    "pad on every side": ({"op": "pad", "top": 400, "bottom": 400, "left": 1}, (100, 300)),
    "resize with upscale": ({"op": "resize", "width": 900, "upscale": True}, (100, 400)),
    "resize by height of a wide strip": (
        {"op": "resize", "height": 10, "upscale": True},
        (600, 5),
    ),
    "resize contain by height of a wide strip": (
        {"op": "resize", "height": 900, "fit": "contain"},
        (900, 5),
    ),
    "resize outside": (
        {"op": "resize", "width": 900, "height": 900, "fit": "outside", "upscale": True},
        (20, 200),
    ),
    "rotate expanding the canvas": ({"op": "rotate", "angle": 45}, (900, 900)),
}


@pytest.mark.parametrize("name", GROWING_STEPS)
def test_a_step_growing_past_the_side_limit_is_refused_naming_it(name: str) -> None:
    step, size = GROWING_STEPS[name]
    raw = {"operations": [{"op": "grayscale"}, step]}
    [error] = refusal(raw, SIDE_LIMIT, size)

    assert error.field == "pipeline.operations.1"
    assert error.message.startswith(f"{step['op']} would make a ")
    assert "(max_output_side)" in error.message


def test_a_step_growing_past_the_pixel_limit_is_refused_naming_it() -> None:
    raw = {"operations": [{"op": "pad", "left": 200}, {"op": "pad", "top": 200}]}

    [error] = refusal(raw, PIXEL_LIMIT, (200, 200))

    assert error.field == "pipeline.operations.1"
    assert "400x400 image (160000 pixels)" in error.message
    assert "the limit is 100000 pixels (max_output_pixels)" in error.message


def test_an_image_over_both_limits_names_both() -> None:
    raw = {"operations": [{"op": "pad", "left": 500, "right": 400, "top": 200}]}
    limits = ImageLimits(max_output_side=800, max_output_pixels=100_000)

    [error] = refusal(raw, limits, (10, 10))

    assert "910x210 image (191100 pixels)" in error.message
    assert "(max_output_side)" in error.message
    assert "(max_output_pixels)" in error.message


def test_each_variant_that_grows_past_a_limit_is_named() -> None:
    raw = {
        "operations": [{"op": "pad", "left": 400}],
        "variants": [
            {"name": "small", "operations": [{"op": "thumbnail", "width": 50, "height": 50}]},
            {"name": "framed", "operations": [{"op": "pad", "right": 400}]},
            {"name": "turned", "operations": [{"op": "flip"}, {"op": "rotate", "angle": 45}]},
        ],
    }

    errors = refusal(raw, SIDE_LIMIT, (300, 800))

    assert [e.field for e in errors] == [
        "pipeline.variants.1.operations.0",
        "pipeline.variants.2.operations.1",
    ]


def test_a_shared_step_over_a_limit_is_named_once_for_every_variant() -> None:
    raw = {
        "operations": [{"op": "pad", "left": 600}, {"op": "pad", "left": 600}],
        "variants": [{"name": "a"}, {"name": "b"}],
    }

    assert [e.field for e in refusal(raw, SIDE_LIMIT, (10, 10))] == ["pipeline.operations.1"]


def test_a_source_passed_through_must_itself_fit_the_output_limits() -> None:
    limits = ImageLimits(max_output_side=1000, max_source_pixels=10**9)

    [error] = refusal({"operations": [{"op": "auto_orient"}]}, limits, (1200, 10))
    [variant_error] = refusal({"variants": [{"name": "as-is"}]}, limits, (1200, 10))

    assert error.field == "pipeline.output"
    assert "(max_output_side)" in error.message
    assert variant_error.field == "pipeline.variants.0.output"
    shrunk = {"operations": [{"op": "resize", "width": 1000}]}
    assert prepare(source(1200, 10), parse_pipeline(shrunk, limits), limits).sizes == {
        "default": (1000, 8)
    }


def test_a_pipeline_just_at_the_limits_is_accepted() -> None:
    raw = {"operations": [{"op": "pad", "left": 450}, {"op": "pad", "right": 450}]}

    sizes = prepare(source(100, 100), parse_pipeline(raw, SIDE_LIMIT), SIDE_LIMIT).sizes

    assert sizes == {"default": (1000, 100)}


def test_the_refusal_comes_before_any_pixel_is_decoded_when_running() -> None:
    raw = {"operations": [{"op": "pad", "left": 600}, {"op": "pad", "right": 600}]}
    corrupt_pixels = encoded(scene(100, 100), "PNG")[:-40]  # a readable header only

    with pytest.raises(PipelineInvalid) as refused:
        run_pipeline(corrupt_pixels, parse_pipeline(raw, SIDE_LIMIT), SIDE_LIMIT)

    assert [e.field for e in refused.value.errors] == ["pipeline.operations.1"]
