import json
import uuid

import pytest

from pixelfleet.errors import FieldError
from pixelfleet.imaging.errors import PipelineInvalid
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations import CropParams, ResizeParams, ThumbnailParams
from pixelfleet.imaging.spec import Pipeline, parse_pipeline

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
    errors = refusal({"operations": [{"op": "swirl", "radius": 3}]})

    assert [e.field for e in errors] == ["pipeline.operations.0.op"]
    assert "swirl" in errors[0].message


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
    assert sorted(fields({"output": {"format": "bmp", "quality": 0}})) == [
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


ASSET = "0b9c2f4e-4f5e-4c8f-9d1a-6a3f2b1c0d9e"
OTHER_ASSET = "7d1e0c3b-2a19-4f08-8e7d-6c5b4a392817"


def test_the_new_operations_parse_to_their_models() -> None:
    pipeline = parse_pipeline(
        {
            "operations": [
                {"op": "flop"},
                {"op": "blur", "sigma": 2},
                {"op": "sharpen", "sigma": 1, "amount": 0.5},
                {"op": "adjust", "brightness": 1.1, "saturation": 0},
                {"op": "pad", "top": 4, "background": "black"},
                {"op": "watermark", "text": "(c) me", "position": "south"},
                {"op": "watermark", "asset": ASSET, "scale": 0.1},
                {"op": "resize", "width": 10, "height": 10, "fit": "outside"},
                {"op": "crop", "width": 5, "height": 5, "gravity": "attention"},
                {"op": "crop", "width": 5, "height": 5, "gravity": "entropy"},
            ]
        },
        LIMITS,
    )

    assert [op.op for op in pipeline.operations] == [
        "flop",
        "blur",
        "sharpen",
        "adjust",
        "pad",
        "watermark",
        "watermark",
        "resize",
        "crop",
        "crop",
    ]


def test_a_watermark_with_text_and_asset_is_refused_at_the_operation() -> None:
    errors = refusal({"operations": [{"op": "watermark", "text": "a", "asset": ASSET}]})

    assert [e.field for e in errors] == ["pipeline.operations.0"]
    assert "either text or asset" in errors[0].message


def test_output_options_missing_from_the_format_are_field_errors() -> None:
    raw = {"output": {"format": "png", "lossless": True, "max_bytes": 5000}}

    assert sorted(fields(raw)) == ["pipeline.output.lossless", "pipeline.output.max_bytes"]
    assert fields({"output": {"format": "webp", "progressive": True}}) == [
        "pipeline.output.progressive"
    ]


def test_the_output_defaults_are_progressive_off_lossless_off_no_target_srgb() -> None:
    output = parse_pipeline({}, LIMITS).output

    assert (output.progressive, output.lossless, output.max_bytes) == (False, False, None)
    assert output.colour_profile == "srgb"


def test_variants_parse_with_their_own_operations_and_outputs() -> None:
    pipeline = parse_pipeline(
        {
            "operations": [{"op": "auto_orient"}, {"op": "grayscale"}],
            "variants": [
                {"name": "thumb", "operations": [{"op": "thumbnail", "width": 64, "height": 64}]},
                {"name": "large_1", "output": {"format": "webp", "lossless": True}},
            ],
        },
        LIMITS,
    )

    outputs = pipeline.outputs()
    assert [o.name for o in outputs] == ["thumb", "large_1"]
    assert outputs[0].operations == [ThumbnailParams(width=64, height=64)]
    assert outputs[1].output.format == "webp"
    assert [op.op for op in pipeline.operations_for(outputs[0])] == [
        "auto_orient",
        "grayscale",
        "thumbnail",
    ]


def test_without_variants_there_is_one_output_named_default() -> None:
    pipeline = parse_pipeline({"operations": [{"op": "flip"}], "output": {"format": "png"}}, LIMITS)

    [output] = pipeline.outputs()
    assert output.name == "default"
    assert output.operations == []
    assert output.output.format == "png"
    assert pipeline.operations_for(output) == pipeline.operations


def test_an_error_inside_a_variant_names_the_variant_and_the_operation() -> None:
    raw = {
        "variants": [
            {"name": "a"},
            {"name": "b", "operations": [{"op": "resize", "width": -3}, {"op": "nope"}]},
        ]
    }

    assert sorted(fields(raw)) == [
        "pipeline.variants.1.operations.0.width",
        "pipeline.variants.1.operations.1.op",
    ]


@pytest.mark.parametrize("name", ["", "Upper", "-dash-first", "with space", "x" * 33, "é"])
def test_a_variant_name_must_be_a_short_lower_case_slug(name: str) -> None:
    assert fields({"variants": [{"name": name}]}) == ["pipeline.variants.0.name"]


def test_variant_names_are_unique() -> None:
    errors = refusal({"variants": [{"name": "a"}, {"name": "b"}, {"name": "a"}]})

    assert [e.field for e in errors] == ["pipeline.variants"]
    assert "'a'" in errors[0].message


def test_the_top_level_output_must_be_left_unset_when_variants_are_given() -> None:
    raw = {"variants": [{"name": "a"}], "output": {"format": "png"}}

    assert fields(raw) == ["pipeline.output"]


def test_more_variants_than_the_limit_are_refused_naming_the_limit() -> None:
    raw = {"variants": [{"name": f"v{i}"} for i in range(4)]}

    errors = refusal(raw, ImageLimits(max_variants=3))

    assert [e.field for e in errors] == ["pipeline.variants"]
    assert "(max_variants)" in errors[0].message
    assert len(parse_pipeline(raw, ImageLimits(max_variants=4)).variants) == 4


def test_the_operation_limit_counts_the_shared_operations_plus_each_variants_own() -> None:
    raw = {
        "operations": [{"op": "grayscale"}] * 2,
        "variants": [
            {"name": "short", "operations": [{"op": "flip"}]},
            {"name": "long", "operations": [{"op": "flip"}] * 2},
        ],
    }

    errors = refusal(raw, ImageLimits(max_operations=3))

    assert [e.field for e in errors] == ["pipeline.variants.1.operations"]
    assert "(max_operations)" in errors[0].message
    assert parse_pipeline(raw, ImageLimits(max_operations=4)).variants[1].name == "long"


def test_side_limits_apply_inside_variants_and_to_padding() -> None:
    raw = {
        "operations": [{"op": "pad", "left": 101}],
        "variants": [{"name": "a", "operations": [{"op": "thumbnail", "width": 101, "height": 5}]}],
    }

    errors = refusal(raw, ImageLimits(max_output_side=100))

    assert [e.field for e in errors] == [
        "pipeline.operations.0.left",
        "pipeline.variants.0.operations.0.width",
    ]
    assert all("(max_output_side)" in e.message for e in errors)


def test_limit_messages_name_their_setting() -> None:
    errors = refusal({"operations": [{"op": "flip"}] * 3}, ImageLimits(max_operations=2))

    assert "(max_operations)" in errors[0].message


def test_asset_ids_lists_every_watermark_image_once() -> None:
    pipeline = parse_pipeline(
        {
            "operations": [{"op": "watermark", "asset": ASSET}, {"op": "watermark", "text": "t"}],
            "variants": [
                {"name": "a", "operations": [{"op": "watermark", "asset": OTHER_ASSET}]},
                {"name": "b", "operations": [{"op": "watermark", "asset": ASSET}]},
            ],
        },
        LIMITS,
    )

    assert pipeline.asset_ids() == {uuid.UUID(ASSET), uuid.UUID(OTHER_ASSET)}
    assert parse_pipeline({}, LIMITS).asset_ids() == set()


def test_a_pipeline_with_variants_round_trips_through_json() -> None:
    pipeline = parse_pipeline(
        {
            "operations": [{"op": "crop", "width": 50, "height": 50, "gravity": "entropy"}],
            "variants": [
                {"name": "a", "output": {"format": "jpeg", "max_bytes": 20000}},
                {"name": "b", "operations": [{"op": "watermark", "asset": ASSET}]},
            ],
        },
        LIMITS,
    )

    assert parse_pipeline(pipeline.model_dump_json(), LIMITS) == pipeline
    assert Pipeline.model_validate(pipeline.model_dump(mode="json")) == pipeline
