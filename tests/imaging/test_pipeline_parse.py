import json

import pytest

from pixelfleet.errors import FieldError
from pixelfleet.imaging.errors import PipelineInvalid
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations import CropParams, ResizeParams
from pixelfleet.imaging.pipeline import Pipeline, parse_pipeline

LIMITS = ImageLimits()


def refusal(raw: object, limits: ImageLimits = LIMITS) -> list[FieldError]:
    with pytest.raises(PipelineInvalid) as refused:
        parse_pipeline(raw, limits)  # type: ignore[arg-type]
    assert refused.value.status == 422
    assert refused.value.slug == "validation-error"
    return refused.value.errors


def fields(raw: object, limits: ImageLimits = LIMITS) -> list[str]:
    return [error.field for error in refusal(raw, limits)]


def test_an_empty_pipeline_re_encodes_with_defaults() -> None:
    pipeline = parse_pipeline({}, LIMITS)

    assert pipeline.operations == []
    assert pipeline.auto_orient is True
    assert pipeline.output.format is None
    assert pipeline.output.quality == 80
    assert pipeline.output.strip_metadata is True


def test_json_text_and_bytes_and_dicts_parse_alike() -> None:
    raw = {"operations": [{"op": "resize", "width": 100}], "output": {"format": "webp"}}

    parsed = [
        parse_pipeline(json.dumps(raw), LIMITS),
        parse_pipeline(json.dumps(raw).encode(), LIMITS),
    ]
    parsed.append(parse_pipeline(raw, LIMITS))

    assert all(p == parsed[0] for p in parsed)
    assert parsed[0].operations == [ResizeParams(width=100)]


def test_operations_become_their_typed_parameter_models() -> None:
    pipeline = parse_pipeline(
        {"operations": [{"op": "crop", "width": 5, "height": 5, "gravity": "north"}]}, LIMITS
    )

    assert pipeline.operations == [CropParams(width=5, height=5, gravity="north")]


def test_a_negative_width_is_reported_at_its_path() -> None:
    assert fields({"operations": [{"op": "resize", "width": -5}]}) == [
        "pipeline.operations.0.width"
    ]


def test_errors_in_later_operations_name_their_index() -> None:
    raw = {"operations": [{"op": "grayscale"}, {"op": "crop", "width": 0, "height": 3}]}

    assert fields(raw) == ["pipeline.operations.1.width"]


def test_an_unknown_operation_is_reported_at_its_op_field() -> None:
    errors = refusal({"operations": [{"op": "blur", "radius": 3}]})

    assert [e.field for e in errors] == ["pipeline.operations.0.op"]
    assert "blur" in errors[0].message


def test_a_missing_op_is_reported_at_its_op_field() -> None:
    assert fields({"operations": [{"width": 3}]}) == ["pipeline.operations.0.op"]


def test_an_unknown_field_in_an_operation_is_refused() -> None:
    assert fields({"operations": [{"op": "flip", "colour": "red"}]}) == [
        "pipeline.operations.0.colour"
    ]


def test_an_unknown_top_level_or_output_field_is_refused() -> None:
    assert fields({"steps": []}) == ["pipeline.steps"]
    assert fields({"output": {"format": "png", "dpi": 300}}) == ["pipeline.output.dpi"]


def test_an_unwritable_output_format_and_out_of_range_quality_are_refused() -> None:
    assert sorted(fields({"output": {"format": "gif", "quality": 0}})) == [
        "pipeline.output.format",
        "pipeline.output.quality",
    ]


def test_a_resize_without_width_or_height_is_refused_at_the_operation() -> None:
    errors = refusal({"operations": [{"op": "resize", "fit": "cover"}]})

    assert [e.field for e in errors] == ["pipeline.operations.0"]
    assert "width" in errors[0].message


def test_an_unknown_colour_is_refused() -> None:
    assert fields({"operations": [{"op": "rotate", "angle": 5, "background": "blurple"}]}) == [
        "pipeline.operations.0.background"
    ]


def test_a_non_finite_angle_is_refused() -> None:
    assert fields('{"operations": [{"op": "rotate", "angle": NaN}]}') != []


def test_more_operations_than_the_limit_are_refused() -> None:
    raw = {"operations": [{"op": "grayscale"}] * 4}

    errors = refusal(raw, ImageLimits(max_operations=3))

    assert [e.field for e in errors] == ["pipeline.operations"]
    assert "3" in errors[0].message
    assert len(parse_pipeline(raw, ImageLimits(max_operations=4)).operations) == 4


def test_requested_sides_over_the_output_side_limit_are_refused() -> None:
    raw = {
        "operations": [
            {"op": "resize", "width": 101},
            {"op": "thumbnail", "width": 10, "height": 101},
            {"op": "crop", "width": 100, "height": 100},
        ]
    }

    assert fields(raw, ImageLimits(max_output_side=100)) == [
        "pipeline.operations.0.width",
        "pipeline.operations.1.height",
    ]


def test_malformed_json_is_refused_at_the_pipeline() -> None:
    errors = refusal('{"operations": [')

    assert [e.field for e in errors] == ["pipeline"]


def test_json_that_is_not_an_object_is_refused_at_the_pipeline() -> None:
    assert fields("[1, 2]") == ["pipeline"]


def test_every_problem_is_reported_at_once() -> None:
    raw = {
        "operations": [{"op": "resize", "width": -1}, {"op": "nope"}],
        "output": {"quality": 101},
    }

    assert sorted(fields(raw)) == [
        "pipeline.operations.0.width",
        "pipeline.operations.1.op",
        "pipeline.output.quality",
    ]


def test_a_pipeline_round_trips_through_json() -> None:
    pipeline = parse_pipeline(
        {
            "operations": [
                {"op": "rotate", "angle": 12.5},
                {"op": "resize", "width": 8, "fit": "cover"},
            ]
        },
        LIMITS,
    )

    assert parse_pipeline(pipeline.model_dump_json(), LIMITS) == pipeline
    assert Pipeline.model_validate(pipeline.model_dump()) == pipeline
