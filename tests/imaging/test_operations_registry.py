from pydantic import TypeAdapter

from pixelfleet.imaging.operations import OPERATIONS, Operation, ResizeParams


def test_the_catalogue_lists_every_operation_once_under_its_op_name() -> None:
    assert set(OPERATIONS) == {
        "resize",
        "thumbnail",
        "crop",
        "rotate",
        "flip",
        "auto_orient",
        "grayscale",
        "flop",
        "blur",
        "sharpen",
        "adjust",
        "pad",
        "watermark",
    }
    for name, spec in OPERATIONS.items():
        assert spec.name == name
        assert spec.params.model_fields["op"].default == name
        assert spec.description
        assert "\n" not in spec.description


def test_every_parameter_model_refuses_unknown_fields() -> None:
    for spec in OPERATIONS.values():
        assert spec.params.model_config.get("extra") == "forbid"


def test_the_operation_union_picks_the_model_by_its_op_field() -> None:
    parsed = TypeAdapter(Operation).validate_python({"op": "resize", "width": 10})

    assert isinstance(parsed, ResizeParams)
    assert parsed.fit == "inside"


def test_each_operation_publishes_a_json_schema() -> None:
    for spec in OPERATIONS.values():
        schema = spec.params.model_json_schema()
        assert schema["properties"]["op"]["const"] == spec.name
