"""A focal point `{"x", "y"}`, and gravities on resize with fit cover."""

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError
from sample_images import as_array

from pixelfleet.imaging.gravity import FocalPoint
from pixelfleet.imaging.operations import crop, resize
from pixelfleet.imaging.operations.crop import CropParams
from pixelfleet.imaging.operations.resize import ResizeParams


def numbered(width: int, height: int) -> Image.Image:
    """Every pixel says where it is: red its column, green its row (both below 256)."""
    xs, ys = np.meshgrid(np.arange(width), np.arange(height))
    rgb = np.stack([xs, ys, np.zeros_like(xs)], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def origin_of(result: Image.Image) -> tuple[int, int]:
    pixels = as_array(result)
    return int(pixels[0, 0, 0]), int(pixels[0, 0, 1])


@pytest.mark.parametrize(
    ("point", "corner"),
    [
        ({"x": 0.5, "y": 0.5}, (75, 50)),
        ({"x": 0.4, "y": 0.75}, (50, 100)),  # centred on (100, 150)
        ({"x": 0.0, "y": 0.0}, (0, 0)),  # as near as the edges allow
        ({"x": 1.0, "y": 1.0}, (150, 100)),
    ],
)
def test_a_crop_is_centred_on_the_focal_point_as_far_as_the_edges_allow(
    point: dict[str, float], corner: tuple[int, int]
) -> None:
    source = numbered(250, 200)
    params = CropParams.model_validate({"width": 100, "height": 100, "gravity": point})

    result = crop.apply(source, params)

    assert result.size == (100, 100)
    assert origin_of(result) == corner


@pytest.mark.parametrize("point", [{"x": 1.5, "y": 0.5}, {"x": 0.5}, {"x": 0.5, "y": 0.5, "z": 1}])
def test_a_focal_point_must_be_two_fractions(point: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        CropParams.model_validate({"width": 10, "height": 10, "gravity": point})


def test_a_cover_resize_keeps_what_its_gravity_names() -> None:
    # 240x120 covered into 60x60: scaled to 120x60, then 60 of the 120 columns kept.
    source = numbered(240, 120)
    west = ResizeParams(width=60, height=60, fit="cover", gravity="west")
    focal = ResizeParams(width=60, height=60, fit="cover", gravity=FocalPoint(x=0.75, y=0.5))
    centred = ResizeParams(width=60, height=60, fit="cover")

    assert origin_of(resize.apply(source, west))[0] < 4
    # Centred on column 90 of 120: columns 60 to 119, which were 120 to 239.
    assert origin_of(resize.apply(source, focal))[0] == pytest.approx(120, abs=3)
    assert origin_of(resize.apply(source, centred))[0] == pytest.approx(60, abs=3)


def test_gravity_on_resize_needs_fit_cover() -> None:
    with pytest.raises(ValidationError, match="fit cover"):
        ResizeParams(width=60, height=60, fit="inside", gravity="north")
